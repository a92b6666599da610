#!/usr/bin/env node
// The CLI; a committed file so package managers can link it before the first build.
import '../dist/cli/main.js';
