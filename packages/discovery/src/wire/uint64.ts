/** Consul's uint64 fields (indexes, flags) read by hand, on the hot path of big answers. */
const UINT64_MAX = (1n << 64n) - 1n;

/** A safe integer or a decimal string within uint64, as a bigint; undefined otherwise. */
export function readUint64(value: unknown): bigint | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined;
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) {
    const n = BigInt(value);
    return n <= UINT64_MAX ? n : undefined;
  }
  return undefined;
}
