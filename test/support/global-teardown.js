export default async function globalTeardown() {
  globalThis.stopTestDatabase?.();
}
