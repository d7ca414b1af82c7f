import { readFileSync } from 'node:fs';
/**
 * The CDK stack, synthesized offline (no AWS account, no Docker): template assertions for what
 * the design requires, and cdk-nag's AwsSolutions checks with every acknowledged finding
 * justified in infra/moonlink-stack.ts.
 */
import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cxapi from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { MoonlinkStack } from '../infra/moonlink-stack.ts';

let template: Template;
let stack: MoonlinkStack;
let app: cdk.App;

beforeAll(() => {
  app = new cdk.App();
  stack = new MoonlinkStack(app, 'Moonlink', { writerGroups: 2 });
  template = Template.fromStack(stack);
}, 300_000);

describe('CDK stack', () => {
  it('stores data in an encrypted, private, TLS-only bucket with a lifecycle for temporary files', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'tmp/', ExpirationInDays: 2, Status: 'Enabled' }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('keeps the catalog in an on-demand DynamoDB table with point-in-time recovery and TTL', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    });
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamEncryption: { EncryptionType: 'KMS' },
      RetentionPeriodHours: 24,
    });
    const week = new MoonlinkStack(new cdk.App(), 'MoonlinkWeek', { streamRetentionHours: 168 });
    Template.fromStack(week).hasResourceProperties('AWS::Kinesis::Stream', { RetentionPeriodHours: 168 });
  });

  it('runs one writer service per table group, two tasks (active and standby), health-checked and drained on stop', () => {
    template.resourceCountIs('AWS::ECS::Service', 2);
    // A deploy starts the new tasks before it stops the old: the standby takes over on the drain.
    template.allResourcesProperties('AWS::ECS::Service', {
      DesiredCount: 2,
      DeploymentConfiguration: Match.objectLike({ MinimumHealthyPercent: 50, MaximumPercent: 200 }),
    });
    const standbyAlarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).filter((a) =>
      String(a.Properties.AlarmDescription).includes('no standby'),
    );
    expect(standbyAlarms).toHaveLength(2);
    for (const a of standbyAlarms)
      expect(a.Properties).toMatchObject({ Threshold: 2, TreatMissingData: 'breaching' });
    // The standby reaches the active writer's internal port: the writers' group admits itself.
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).filter(
      (r) => r.Properties.FromPort === 8081 && String(r.Properties.Description).includes('standby'),
    );
    expect(ingress).toHaveLength(1);
    expect(ingress[0].Properties.GroupId).toEqual(ingress[0].Properties.SourceSecurityGroupId);
    const alone = Template.fromStack(
      new MoonlinkStack(new cdk.App(), 'MoonlinkAlone', { writerStandby: false }),
    );
    alone.hasResourceProperties('AWS::ECS::Service', {
      DesiredCount: 1,
      DeploymentConfiguration: Match.objectLike({ MinimumHealthyPercent: 0, MaximumPercent: 100 }),
    });
    expect(JSON.stringify(alone.findResources('AWS::CloudWatch::Alarm'))).not.toContain('no standby');
  });

  it('with enhanced fan-out: a stream consumer per writer group, its ARN and subscribe rights for that group only', () => {
    template.resourceCountIs('AWS::Kinesis::StreamConsumer', 0);
    const efo = Template.fromStack(
      new MoonlinkStack(new cdk.App(), 'MoonlinkFanOut', { writerGroups: 2, kinesisEnhancedFanOut: true }),
    );
    efo.resourceCountIs('AWS::Kinesis::StreamConsumer', 2);
    efo.hasResourceProperties('AWS::Kinesis::StreamConsumer', { ConsumerName: 'moonlink-writer-1' });
    const consumers = Object.keys(efo.findResources('AWS::Kinesis::StreamConsumer'));
    const tasks = efo.findResources('AWS::ECS::TaskDefinition');
    for (const [g, consumer] of consumers.sort().entries()) {
      const [, task] = Object.entries(tasks).find(([id]) => id.startsWith(`WriterTask${g}`))!;
      const env = task.Properties.ContainerDefinitions[0].Environment as { Name: string; Value: unknown }[];
      expect(env.find((e) => e.Name === 'MOONLINK_KINESIS_CONSUMER_ARN')?.Value).toEqual({
        'Fn::GetAtt': [consumer, 'ConsumerARN'],
      });
    }
    const policies = efo.findResources('AWS::IAM::Policy');
    for (const [id, p] of Object.entries(policies)) {
      const doc = JSON.stringify(p.Properties.PolicyDocument);
      if (!doc.includes('kinesis:SubscribeToShard')) continue;
      expect(id).toMatch(/^WriterTask[01]TaskRole/);
    }
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          HealthCheck: Match.objectLike({ Command: Match.arrayWith(['CMD']) }),
          StopTimeout: 120,
          Environment: Match.arrayWith([{ Name: 'MOONLINK_WRITER_GROUP', Value: '1' }]),
        }),
      ],
    });
  });

  it('serves every route from its function behind IAM authorization', () => {
    const routes = template.findResources('AWS::ApiGatewayV2::Route');
    const keys = Object.values(routes).map((r) => r.Properties.RouteKey as string);
    expect(keys.sort()).toEqual(
      [
        'DELETE /leases/{id}',
        'DELETE /tables/{name}',
        'GET /health',
        'GET /health/live',
        'GET /openapi.json',
        'GET /tables',
        'GET /tables/{name}',
        'GET /tables/{name}/rows',
        'GET /tables/{name}/snapshot',
        'POST /tables',
        'POST /tables/{name}/flush',
        'POST /tables/{name}/rename',
        'POST /tables/{name}/schema',
        'POST /tables/{name}/source/resync',
        'POST /tables/{name}/imports',
        'GET /tables/{name}/imports/{id}',
        'POST /tables/{name}/rows',
        'ANY /iceberg/{proxy+}',
      ].sort(),
    );
    for (const r of Object.values(routes))
      expect(r.Properties.AuthorizationType, r.Properties.RouteKey).toBe('AWS_IAM');
    template.resourceCountIs('AWS::Lambda::Function', 4);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      // Below Lambda's 6 MB event limit even for base64 (binary) bodies: our 413, not Lambda's.
      Environment: { Variables: Match.objectLike({ MOONLINK_MAX_BODY_BYTES: String(4 * 1024 * 1024) }) },
    });
  });

  it('grants each function only what it uses', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    const actionsOf = (needle: string): string[] =>
      Object.entries(policies)
        .filter(([id]) => id.startsWith(needle))
        .flatMap(([, p]) =>
          (p.Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap((s) => s.Action),
        );
    const ingest = actionsOf('IngestFunction');
    expect(ingest).toContain('kinesis:PutRecord');
    expect(ingest.some((a) => a.startsWith('s3:'))).toBe(false);
    expect(ingest).not.toContain('dynamodb:PutItem');
    const read = actionsOf('ReadFunction');
    expect(read).toContain('s3:GetObject');
    expect(read).not.toContain('s3:PutObject');
    expect(read.some((a) => a.startsWith('kinesis:'))).toBe(false);
    const flush = actionsOf('FlushFunction');
    // Every function: logs into its log group and the network interfaces of a function in a VPC.
    expect(flush).toEqual(
      expect.arrayContaining(['logs:CreateLogStream', 'logs:PutLogEvents', 'ec2:CreateNetworkInterface']),
    );
    expect(flush.filter((a) => !/^(xray|logs|ec2):/.test(a)).sort()).toEqual([
      'dynamodb:GetItem',
      'dynamodb:Query',
    ]);
    for (const a of Object.values(policies).flatMap((p) =>
      (p.Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap((s) => s.Action),
    )) {
      expect(a, 'no wildcard actions').not.toMatch(/\*/);
    }
  });

  it('sets log retention and alarms on write lag and errors', () => {
    const groups = template.findResources('AWS::Logs::LogGroup');
    for (const g of Object.values(groups)) expect(g.Properties.RetentionInDays).toBeGreaterThan(0);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'GetRecords.IteratorAgeMilliseconds',
      Threshold: 60_000,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Namespace: 'AWS/Lambda',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: '5xx',
      Namespace: 'AWS/ApiGateway',
    });
    // The writer's own metric (lib/aws/writer-metrics.ts); no data means no writer.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'EventLoopDelayMax',
      Namespace: 'Moonlink',
      Dimensions: [
        { Name: 'WriterGroup', Value: '0' },
        { Name: 'service', Value: 'moonlink-writer' },
      ],
      TreatMissingData: 'breaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'RunningTaskCount',
      Namespace: 'ECS/ContainerInsights',
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'GetRecords.IteratorAgeMilliseconds',
      TreatMissingData: 'breaching',
    });
    // Every alarm notifies the alarm topic, when it fires and when it recovers.
    const topic = Object.keys(template.findResources('AWS::SNS::Topic'));
    expect(topic).toHaveLength(1);
    const alarms = Object.entries(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThanOrEqual(12);
    for (const [id, a] of alarms) {
      expect(a.Properties.AlarmActions, id).toEqual([{ Ref: topic[0] }]);
      expect(a.Properties.OKActions, id).toEqual([{ Ref: topic[0] }]);
    }
    // The writer's own metrics (lib/aws/writer-metrics.ts) behind alarms, per group.
    for (const [metric, threshold] of [
      ['CommitLagSeconds', 300],
      ['DeadLetters', 1],
      ['PostgresSlotLagBytes', 1024 ** 3],
    ] as const) {
      for (const g of ['0', '1'])
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          Namespace: 'Moonlink',
          MetricName: metric,
          Threshold: threshold,
          Dimensions: Match.arrayWith([{ Name: 'WriterGroup', Value: g }]),
        });
    }
    // A dashboard of lag, throughput, the writers and errors.
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0].Properties.DashboardBody);
    for (const m of [
      'CommitLagSeconds',
      'EventLoopDelayMax',
      'DeadLetters',
      'IteratorAgeMilliseconds',
      '5xx',
      'Errors',
    ])
      expect(body, m).toContain(m);
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasOutput('AlarmTopicArn', {});
    const writer = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0];
    const env = (
      writer.Properties.ContainerDefinitions[0].Environment as { Name: string; Value: string }[]
    ).map((e) => e.Name);
    expect(env).toContain('POWERTOOLS_METRICS_NAMESPACE');
  });

  it('passes cdk-nag AwsSolutions checks, with every acknowledgement justified', () => {
    const checks = new AwsSolutionsChecks(app);
    const report = checks.validateScope(stack) as { violations?: unknown[] } | unknown[];
    const violations = Array.isArray(report) ? report : (report.violations ?? []);
    expect(violations, JSON.stringify(violations, null, 1).slice(0, 3000)).toEqual([]);
    const acknowledgedOn = (c: { node: { metadata: { type: string; data: unknown }[] } }) =>
      c.node.metadata
        .filter((m) => m.type === cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((m) => Object.entries(m.data as Record<string, string>));
    // Nothing is accepted for the whole stack: each finding on the constructs it concerns.
    expect(acknowledgedOn(stack).filter(([id]) => id.includes('AwsSolutions'))).toEqual([]);
    const rules = stack.node
      .findAll()
      .flatMap(acknowledgedOn)
      .filter(([id]) => id.includes('AwsSolutions'));
    expect(rules.length).toBeGreaterThan(0);
    for (const [id, reason] of rules) expect(String(reason).length, id).toBeGreaterThan(40);
    // And written into the template for audits (cdk_nag.rules_to_suppress), with the reasons.
    // (CDK's own CloudFormation-Validate acknowledgements are written there too; ours are AwsSolutions.)
    const ours = (r: { Metadata?: any }): { id: string; reason: string }[] =>
      (r.Metadata?.cdk_nag?.rules_to_suppress ?? []).filter((x: { id: string }) =>
        x.id.startsWith('AwsSolutions'),
      );
    const suppressed = Object.entries(
      template.toJSON().Resources as Record<string, { Metadata?: any }>,
    ).filter(([, r]) => ours(r).length > 0);
    expect(suppressed.length).toBeGreaterThan(0);
    const ids = new Set(suppressed.flatMap(([, r]) => ours(r).map((x) => x.id)));
    expect([...ids].some((id) => id.startsWith('AwsSolutions-IAM5'))).toBe(true);
    for (const [, r] of suppressed)
      for (const x of ours(r)) expect(String(x.reason).length).toBeGreaterThan(40);
    // The bucket and the catalog table themselves carry no acknowledgement.
    for (const [id] of suppressed) expect(id).not.toMatch(/^(Data|Catalog)[A-F0-9]{8}$/);
  });

  it('builds the writer image for the task CPU, and an email can be subscribed to the alarms', () => {
    const asm = app.synth();
    const manifests = asm.artifacts.filter((a) => a instanceof cxapi.AssetManifestArtifact);
    const images = manifests.flatMap((m) =>
      Object.values(m.contents.dockerImages ?? {}).map((i) => i.source as { platform?: string }),
    );
    expect(images.length).toBeGreaterThan(0);
    for (const i of images) expect(i.platform).toBe('linux/arm64');
    // The image runs the compiled bundle (npm run build:writer), not TypeScript through tsx.
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(dockerfile).toMatch(/RUN node infra\/build-writer\.mjs/);
    expect(dockerfile).toMatch(/CMD \[.*"writer-main\.js"\]/);
    expect(dockerfile).not.toMatch(/tsx/);
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64' },
    });
    const withEmail = new MoonlinkStack(new cdk.App(), 'MoonlinkMail', { alarmEmail: 'oncall@example.com' });
    Template.fromStack(withEmail).hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
  });

  it('grants the read function only what leases need on the catalog', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    const readPolicy = Object.entries(policies).find(([id]) => id.startsWith('ReadFunction'));
    expect(readPolicy).toBeDefined();
    const actions = JSON.stringify(readPolicy![1].Properties.PolicyDocument);
    expect(actions).toContain('dynamodb:PutItem');
    expect(actions).not.toContain('dynamodb:BatchWriteItem');
    expect(actions).not.toContain('dynamodb:Scan');
  });

  it('registers tables in Glue: the default database, writer grants scoped to its databases, an alarm on sync lag', () => {
    template.hasResourceProperties('AWS::Glue::Database', {
      DatabaseInput: Match.objectLike({ Name: 'moonlink_default' }),
    });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([{ Name: 'MOONLINK_GLUE_DATABASE_PREFIX', Value: 'moonlink_' }]),
        }),
      ],
    });
    const policies = template.findResources('AWS::IAM::Policy');
    const writer = Object.entries(policies).find(([id]) => id.startsWith('WriterTask0TaskRole'));
    expect(writer).toBeDefined();
    const statements = writer![1].Properties.PolicyDocument.Statement as {
      Action: string[];
      Resource: unknown;
    }[];
    const glueTables = statements.find((st) => [st.Action].flat().includes('glue:UpdateTable'));
    expect([glueTables!.Action].flat().sort()).toEqual([
      'glue:CreateTable',
      'glue:DeleteTable',
      'glue:GetTable',
      'glue:UpdateTable',
    ]);
    const resources = JSON.stringify(glueTables!.Resource);
    expect(resources).toContain(':catalog');
    expect(resources).toContain(':database/moonlink_*');
    expect(resources).toContain(':table/moonlink_*/*');
    expect(resources).not.toMatch(/:table\/\*/);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'GlueSyncLagSeconds',
      Threshold: 300,
      Dimensions: Match.arrayWith([{ Name: 'WriterGroup', Value: '1' }]),
    });
    const outputs = Object.keys(template.findOutputs('*'));
    expect(outputs).toEqual(
      expect.arrayContaining(['GlueDatabase', 'AthenaWorkGroupName', 'AthenaResultsBucket']),
    );
  });

  it('gives Athena a workgroup with encrypted, expiring results', () => {
    template.hasResourceProperties('AWS::Athena::WorkGroup', {
      State: 'ENABLED',
      WorkGroupConfiguration: Match.objectLike({
        EnforceWorkGroupConfiguration: true,
        ResultConfiguration: Match.objectLike({ EncryptionConfiguration: { EncryptionOption: 'SSE_S3' } }),
      }),
    });
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ ExpirationInDays: 30, Status: 'Enabled' })]),
      },
      PublicAccessBlockConfiguration: Match.objectLike({ BlockPublicAcls: true }),
    });
  });

  it('vends per-table read credentials through a read-only role only the tables function may assume', () => {
    const roles = template.findResources('AWS::IAM::Role');
    const [id, role] = Object.entries(roles).find(([k]) => k.startsWith('VendedReadRole'))!;
    expect(role.Properties.MaxSessionDuration).toBe(3600);
    expect(JSON.stringify(role.Properties.AssumeRolePolicyDocument)).toContain('TablesFunctionServiceRole');
    const policies = template.findResources('AWS::IAM::Policy');
    const own = Object.entries(policies).find(
      ([k]) => k.startsWith(id.replace(/[A-F0-9]{8}$/, '')) && k !== id,
    );
    const actions = (own![1].Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap(
      (st) => st.Action,
    );
    expect(actions.sort()).toEqual(['s3:GetObject', 's3:ListBucket']);
    const tablesPolicy = Object.entries(policies).find(([k]) => k.startsWith('TablesFunction'))!;
    expect(JSON.stringify(tablesPolicy[1].Properties.PolicyDocument)).toContain('sts:AssumeRole');
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ MOONLINK_VENDED_ROLE_ARN: Match.anyValue() }) },
    });
  });

  it('with glue off: no Glue database, grants, workgroup or alarm', () => {
    const off = Template.fromStack(new MoonlinkStack(new cdk.App(), 'MoonlinkNoGlue', { glue: false }));
    off.resourceCountIs('AWS::Glue::Database', 0);
    off.resourceCountIs('AWS::Athena::WorkGroup', 0);
    expect(JSON.stringify(off.findResources('AWS::IAM::Policy'))).not.toContain('glue:');
    expect(JSON.stringify(off.findResources('AWS::CloudWatch::Alarm'))).not.toContain('GlueSyncLagSeconds');
  });

  it('lets only the writers read Postgres secrets, under moonlink/ only', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    for (const prefix of ['WriterTask0TaskRole', 'WriterTask1TaskRole']) {
      const [, p] = Object.entries(policies).find(([id]) => id.startsWith(prefix))!;
      const doc = JSON.stringify(p.Properties.PolicyDocument);
      expect(doc, prefix).toContain('secretsmanager:GetSecretValue');
      expect(doc, prefix).toContain(':secret:moonlink/*');
    }
    for (const [id, p] of Object.entries(policies)) {
      if (id.startsWith('WriterTask')) continue;
      expect(JSON.stringify(p.Properties.PolicyDocument), id).not.toContain('secretsmanager');
    }
  });

  it('grants object actions by prefix (tables/, tmp/, deadletter/, imports/ for the writer), never the whole bucket', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    const bucketId = stack.getLogicalId(stack.bucket.node.defaultChild as cdk.CfnElement);
    let prefixed = 0;
    for (const [id, p] of Object.entries(policies)) {
      for (const st of p.Properties.PolicyDocument.Statement as {
        Action: string | string[];
        Resource: unknown;
        Condition?: unknown;
      }[]) {
        const actions = [st.Action].flat();
        const resources = JSON.stringify(st.Resource);
        if (!resources.includes(bucketId)) continue;
        if (actions.some((a) => a.startsWith('s3:') && a !== 's3:ListBucket')) {
          expect(resources, id).not.toMatch(/"\/\*"/);
          for (const m of resources.matchAll(/"\/([a-z]+)\/\*"/g)) {
            expect(['tables', 'tmp', 'deadletter', 'imports'], id).toContain(m[1]);
            prefixed++;
          }
        }
        if (actions.includes('s3:ListBucket') && !id.startsWith('VendedReadRole'))
          expect(JSON.stringify(st.Condition), id).toContain('s3:prefix');
      }
    }
    expect(prefixed).toBeGreaterThan(8);
  });

  it('lets the writer read import sources it is given, and nothing else outside its bucket', () => {
    const withImports = Template.fromStack(
      new MoonlinkStack(new cdk.App(), 'MoonlinkImports', { importSources: ['s3://landing-zone/exports/'] }),
    );
    const text = JSON.stringify(withImports.findResources('AWS::IAM::Policy'));
    expect(text).toContain(':s3:::landing-zone/exports/*');
    expect(text).toMatch(/"s3:prefix":\["exports\/\*"\]/);
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('landing-zone');
    expect(() => new MoonlinkStack(new cdk.App(), 'Bad', { importSources: ['landing-zone'] })).toThrow(
      /importSources/,
    );
  });

  it('gives the functions inline policies, not the AWS-managed execution roles (logs only into their log group)', () => {
    const roles = Object.entries(template.findResources('AWS::IAM::Role')).filter(
      ([id]) => /Function(ServiceRole)?/.test(id) && !id.startsWith('Vended'),
    );
    expect(roles.length).toBeGreaterThanOrEqual(4);
    for (const [id, r] of roles) expect(r.Properties.ManagedPolicyArns, id).toBeUndefined();
    const policies = template.findResources('AWS::IAM::Policy');
    for (const [id, p] of Object.entries(policies).filter(([k]) =>
      /^(Ingest|Tables|Read|Flush)Function/.test(k),
    )) {
      const logs = (
        p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[]
      ).find((st) => [st.Action].flat().includes('logs:PutLogEvents'));
      expect(JSON.stringify(logs?.Resource), id).toContain('FunctionLogs');
      expect([logs!.Action].flat(), id).not.toContain('logs:CreateLogGroup');
    }
  });
});
