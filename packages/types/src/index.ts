export * from './wire.js';
export * from './leader.js';
