/** A typed array of the same kind holding `array`'s values and room for at least `needed` (doubling), or `array` when it has room. */
export function grown<T extends Uint8Array | Uint32Array | Int32Array | Float64Array | Float32Array | BigInt64Array>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  const next = new (array.constructor as new (n: number) => T)(Math.max(needed, array.length * 2));
  next.set(array as never);
  return next;
}
