/** The CDK app: `npm run synth` (offline, no Docker), `npx cdk deploy` (see README "AWS deployment"). */
import * as cdk from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { MoonlinkStack } from './moonlink-stack.ts';

const app = new cdk.App();
new MoonlinkStack(app, 'Moonlink', {
  env: process.env.CDK_DEFAULT_ACCOUNT
    ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION ?? 'us-east-1' }
    : undefined,
  writerGroups: Number(process.env.MOONLINK_WRITER_GROUPS ?? '1'),
  alarmEmail: process.env.MOONLINK_ALARM_EMAIL || undefined,
  importSources: (process.env.MOONLINK_IMPORT_SOURCES ?? '').split(',').filter(Boolean),
  writerStandby: process.env.MOONLINK_WRITER_STANDBY !== 'false',
  kinesisEnhancedFanOut: process.env.MOONLINK_KINESIS_ENHANCED_FAN_OUT === 'true',
  streamRetentionHours: process.env.MOONLINK_STREAM_RETENTION_HOURS
    ? Number(process.env.MOONLINK_STREAM_RETENTION_HOURS)
    : undefined,
});
cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
