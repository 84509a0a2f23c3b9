/** Replaced at build time by scripts/build.mjs (esbuild `define`). */
declare const __KEYBROKER_VERSION__: string | undefined;
declare const __KEYBROKER_COMMIT__: string | undefined;

export const BUILD_INFO = {
  version: typeof __KEYBROKER_VERSION__ === 'string' ? __KEYBROKER_VERSION__ : '0.0.0-dev',
  commit: typeof __KEYBROKER_COMMIT__ === 'string' ? __KEYBROKER_COMMIT__ : 'unknown',
};
