// axios's CommonJS build, the module node-vault requires (src/sources/vault-adapter.ts imports
// it by this path so that the bundle holds one axios, not its ESM and CJS builds side by side).
declare module 'axios/dist/node/axios.cjs' {
  import axios from 'axios';
  export default axios;
}
