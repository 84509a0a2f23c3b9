/**
 * `keybroker explain ERR_X`: the troubleshooting entry for an error code, from inside the
 * executable (like `rustc --explain`), so a hint is useful on a laptop that has no docs.
 */
import type { Argv } from 'yargs';
import { managedDocsUrl } from '../config/docs-url.js';
import type { AppContext } from '../context.js';
import { configError } from '../errors.js';
import { printableAscii } from '../platform/text.js';
import { closest, orList } from './suggest.js';
import { configInputs } from './token.js';

interface ExplainArgs {
  code?: string;
  list?: boolean;
}

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command(
    'explain [code]',
    'print the troubleshooting entry for an error code (ERR_…)',
    (yy) =>
      yy
        .positional('code', {
          type: 'string',
          describe: 'the code an error line names, e.g. ERR_VAULT_DENIED',
        })
        .option('list', { type: 'boolean', describe: 'print every code with its section' }),
    async (argv) => {
      await runExplain(ctx, argv as ExplainArgs);
    },
  );
}

/** `vault_denied`, `err_vault_denied` and `ERR_VAULT_DENIED` all name one entry. */
function normalizeCode(input: string): string {
  const up = input.trim().toUpperCase().replace(/-/g, '_');
  return up.startsWith('ERR_') ? up : `ERR_${up}`;
}

async function runExplain(ctx: AppContext, args: ExplainArgs): Promise<void> {
  const { embeddedEntries } = await import('../explain/embedded.js');
  const { renderEntry } = await import('../explain/entries.js');
  const entries = embeddedEntries();
  if (args.list) {
    ctx.stdout([...entries.values()].map((e) => `${e.code}\t${e.section}\n`).join(''));
    return;
  }
  if (args.code === undefined || args.code.trim() === '') {
    throw configError('ERR_USAGE', 'explain: no error code given', {
      hint: 'run keybroker explain ERR_X with the code an error line names; keybroker explain --list prints every code',
    });
  }
  const code = normalizeCode(args.code);
  const entry = entries.get(code);
  if (!entry) {
    const near = closest(
      code.slice(4),
      [...entries.keys()].map((c) => c.slice(4)),
    ).map((c) => `ERR_${c}`);
    const shown = printableAscii(code);
    throw configError('ERR_USAGE', `explain: no entry for ${shown}`, {
      hint: near.length > 0 ? `did you mean ${orList(near)}?` : 'keybroker explain --list prints every code',
    });
  }
  ctx.stdout(renderEntry(entry, managedDocsUrl(configInputs(ctx))));
}
