/** `keybroker doctor [--probe] [--json]`: exit 0 when every check passes, 1 otherwise. */
import type { Argv } from 'yargs';
import { managedDocsUrl } from '../config/docs-url.js';
import type { AppContext } from '../context.js';
import { renderText } from '../doctor/report.js';
import { withDocsUrl } from '../errors.js';
import { configInputs } from './token.js';

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command(
    'doctor',
    'check the config, the source, the cache and the Claude Code wiring',
    (yy) =>
      yy
        .option('probe', {
          type: 'boolean',
          default: false,
          describe: 'also fetch one token (shown redacted)',
        })
        .option('json', { type: 'boolean', default: false, describe: 'one JSON object instead of text' }),
    async (argv) => {
      const { runDoctor } = await import('../doctor/run.js');
      const report = await runDoctor(ctx, { probe: Boolean(argv.probe) });
      const docsUrl = managedDocsUrl(configInputs(ctx));
      for (const c of report.checks) if (c.hint) c.hint = withDocsUrl(c.hint, docsUrl);
      ctx.stdout(argv.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
      if (!report.ok) process.exitCode = 1;
    },
  );
}
