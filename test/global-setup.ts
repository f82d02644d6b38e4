/**
 * Starts the shared sandbox servers once for the whole test run and hands their addresses to the
 * test files through vitest's provide/inject. (Filled in as the sandbox grows.)
 */
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}
