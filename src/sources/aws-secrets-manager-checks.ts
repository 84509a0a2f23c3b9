/** Doctor checks an aws-secrets-manager source contributes: a region and some credentials (offline). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AwsSecretsManagerSourceConfig } from '../config/types.js';
import type { DoctorScope } from '../doctor/checks/scope.js';
import { type CheckResult, check } from '../doctor/report.js';

export function awsSecretsManagerChecks(
  src: AwsSecretsManagerSourceConfig,
  scope: DoctorScope,
): CheckResult[] {
  const { ctx, env } = scope;
  const out: CheckResult[] = [];
  const region = src.region ?? (src.profile ? undefined : env.AWS_REGION);
  if (!region && !src.profile && !fs.existsSync(path.join(ctx.homeDir, '.aws', 'config'))) {
    out.push(
      check(
        'source.region',
        'fail',
        'no AWS region: neither source.region, AWS_REGION nor ~/.aws/config sets one',
        {
          code: 'ERR_AWS_REGION_MISSING',
          hint: 'set "region" in the source or AWS_REGION',
        },
      ),
    );
  } else {
    out.push(
      check(
        'source.region',
        'pass',
        region ? `region ${region}` : `region from the AWS profile ${src.profile ?? 'default'}`,
      ),
    );
  }
  const hasCreds =
    (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) ||
    env.AWS_WEB_IDENTITY_TOKEN_FILE ||
    env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI ||
    env.AWS_CONTAINER_CREDENTIALS_FULL_URI ||
    src.profile ||
    env.AWS_PROFILE ||
    fs.existsSync(path.join(ctx.homeDir, '.aws', 'credentials')) ||
    fs.existsSync(path.join(ctx.homeDir, '.aws', 'config'));
  out.push(
    hasCreds
      ? check(
          'source.credentials',
          'pass',
          'AWS credentials are configured (checked for real only with --probe)',
        )
      : check(
          'source.credentials',
          'warn',
          'no AWS credentials found in the environment or ~/.aws (an instance role may still answer)',
          {
            code: 'ERR_AWS_NO_CREDENTIALS',
            hint: 'run aws sso login or aws configure, or set AWS_PROFILE',
          },
        ),
  );
  return out;
}
