/**
 * A URL as it may be shown (stderr, audit, doctor): its password becomes `***`
 * (`http://user:***@proxy:3128/`). The one redaction lives in src/output/redact.ts.
 */
export { redactUrl } from '../output/redact.js';
