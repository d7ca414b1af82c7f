/**
 * The AWS deployment as one stack: storage (S3, DynamoDB, Kinesis), the writer on ECS Fargate,
 * the read/ingest functions on Lambda behind an HTTP API with IAM authorization on every route,
 * least-privilege IAM, log retention, and alarms on write lag and errors.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as cdk from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as authorizers from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as integrations from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as athena from 'aws-cdk-lib/aws-athena';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { WriteNagSuppressionsToCloudFormationAspect } from 'cdk-nag';
import type { Construct, IConstruct } from 'constructs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface MoonlinkStackProps extends cdk.StackProps {
  /** Writer services; tables are spread over them by rendezvous hashing of their name (lib/aws/table-groups.ts). */
  writerGroups?: number;
  /** Kinesis shards (a table's records always go to one shard). */
  shards?: number;
  /** Writer task size. */
  writerCpu?: number;
  writerMemoryMiB?: number;
  /** Days CloudWatch keeps logs. */
  logRetention?: logs.RetentionDays;
  /** Days before leftover temporary objects (tail files, read snapshots) expire. */
  tmpExpirationDays?: number;
  /** An email address subscribed to the alarm topic (it must confirm the subscription). */
  alarmEmail?: string;
  /**
   * Hours the stream keeps records (default 24, Kinesis' included retention; up to 8760 at extra
   * cost). The writer needs only what it has not committed (30 s by default), but a writer
   * stopped for longer than this loses what it had not committed: the no-running-task alarm
   * fires within minutes.
   */
  streamRetentionHours?: number;
  /**
   * Register every table in the AWS Glue Data Catalog so Athena finds it (default true): a Glue
   * database per namespace, `<glueDatabasePrefix><namespace>`; the stack creates the one of the
   * default namespace (`moonlink_default`), the writer others on demand.
   */
  glue?: boolean;
  glueDatabasePrefix?: string;
  /**
   * Where imports (`POST /tables/{name}/imports`) may read from: `s3://bucket/` or
   * `s3://bucket/prefix/` (the writer gets read access there and nowhere else; none by default).
   */
  importSources?: string[];
  /**
   * Two tasks per writer group (default true): the second is a standby that forwards internal
   * requests to the active writer and takes its tables over when it drains (a rolling deploy)
   * or dies (lib/aws/writer-group-member.ts). False: one task, and every deploy or crash of it
   * is a gap in flushes and fresh reads (writes still land in the stream).
   */
  writerStandby?: boolean;
  /**
   * Kinesis enhanced fan-out (default false): a stream consumer per writer group, whose shard
   * readers subscribe (SubscribeToShard, HTTP/2) instead of polling GetRecords — each group
   * gets 2 MiB/s per shard of its own and records as they land, at $0.015 per consumer-shard
   * hour plus $0.013 per GB read.
   */
  kinesisEnhancedFanOut?: boolean;
}

export const WRITER_PORT = 8081;
/** Largest request body the functions take (Lambda's 6 MB event limit, base64 for binary). */
export const LAMBDA_MAX_BODY_BYTES = 4 * 1024 * 1024;

export class MoonlinkStack extends cdk.Stack {
  readonly bucket: s3.Bucket;
  private readonly importSources: string[];
  readonly catalogTable: dynamodb.Table;
  readonly stream: kinesis.Stream;
  readonly api: apigw.HttpApi;
  readonly functions: Record<string, nodejs.NodejsFunction> = {};
  /** Every alarm notifies this topic (output `AlarmTopicArn`). */
  readonly alarmTopic: sns.Topic;
  /** Assumed (narrowed per table) for the REST catalog's vended credentials. */
  readonly vendedReadRole!: iam.Role;
  /** With `glue` on: the default namespace's Glue database and the Athena workgroup. */
  readonly glueDatabase?: glue.CfnDatabase;
  readonly athenaWorkGroup?: athena.CfnWorkGroup;

  constructor(scope: Construct, id: string, props: MoonlinkStackProps = {}) {
    super(scope, id, props);
    const groups = props.writerGroups ?? 1;
    const writerTasksPerGroup = props.writerStandby === false ? 1 : 2;
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.importSources = props.importSources ?? [];
    const glueOn = props.glue ?? true;
    const gluePrefix = props.glueDatabasePrefix ?? 'moonlink_';
    if (!/^[a-z0-9_]{1,100}$/.test(gluePrefix))
      throw new Error('glueDatabasePrefix: lower-case letters, digits and underscores only');

    // ---------------------------------------------------------------- storage
    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      lifecycleRules: [{ expiration: cdk.Duration.days(90) }],
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    this.bucket = new s3.Bucket(this, 'Data', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: false,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'data/',
      lifecycleRules: [
        // Tail files and read snapshots are garbage-collected by the writer; this catches leftovers.
        { prefix: 'tmp/', expiration: cdk.Duration.days(props.tmpExpirationDays ?? 2) },
        { abortIncompleteMultipartUploadAfter: cdk.Duration.days(1) },
      ],
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    this.catalogTable = new dynamodb.Table(this, 'Catalog', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'ttl',
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    this.stream = new kinesis.Stream(this, 'Log', {
      shardCount: props.shards ?? 2,
      retentionPeriod: cdk.Duration.hours(props.streamRetentionHours ?? 24),
      encryption: kinesis.StreamEncryption.MANAGED,
    });

    // ---------------------------------------------------------------- network
    // With a concrete region, name the zones so synth never needs an AZ lookup (works offline).
    const zones = cdk.Token.isUnresolved(this.region) ? undefined : [`${this.region}a`, `${this.region}b`];
    const vpc = new ec2.Vpc(this, 'Vpc', {
      ...(zones ? { availabilityZones: zones } : { maxAzs: 2 }),
      natGateways: 1,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      ],
      gatewayEndpoints: {
        s3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        dynamodb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(
        new logs.LogGroup(this, 'FlowLogs', { retention, removalPolicy: cdk.RemovalPolicy.DESTROY }),
      ),
    });
    const namespace = new servicediscovery.PrivateDnsNamespace(this, 'Namespace', {
      name: 'moonlink.internal',
      vpc,
    });
    const writerSg = new ec2.SecurityGroup(this, 'WriterSg', {
      vpc,
      description: 'Moonlink writer: internal port from the functions only',
    });
    const functionSg = new ec2.SecurityGroup(this, 'FunctionSg', { vpc, description: 'Moonlink functions' });
    writerSg.addIngressRule(
      functionSg,
      ec2.Port.tcp(WRITER_PORT),
      'functions ask the writer for snapshots and flushes',
    );
    if (writerTasksPerGroup === 2) {
      // A standby forwards the functions' requests to its group's active writer.
      writerSg.addIngressRule(
        writerSg,
        ec2.Port.tcp(WRITER_PORT),
        'a standby writer forwards to the active one',
      );
    }

    const common: Record<string, string> = {
      MOONLINK_BUCKET: this.bucket.bucketName,
      MOONLINK_PREFIX: '',
      MOONLINK_CATALOG_TABLE: this.catalogTable.tableName,
      MOONLINK_STREAM: this.stream.streamName,
      MOONLINK_WRITER_GROUPS: String(groups),
      MOONLINK_WRITER_URL_TEMPLATE: `http://writer-{group}.moonlink.internal:${WRITER_PORT}`,
    };

    // ---------------------------------------------------------------- writer (ECS Fargate)
    const cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const image = ecs.ContainerImage.fromAsset(ROOT, {
      file: 'Dockerfile',
      // The task runs on ARM64 (below): built for it on any machine, not for the builder's CPU.
      platform: Platform.LINUX_ARM64,
      exclude: ['node_modules', 'data', 'cdk.out', '.git'],
    });
    const writerLogs = new logs.LogGroup(this, 'WriterLogs', {
      retention,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const writerServices: ecs.FargateService[] = [];
    const writerTasks: ecs.FargateTaskDefinition[] = [];
    for (let g = 0; g < groups; g++) {
      const task = new ecs.FargateTaskDefinition(this, `WriterTask${g}`, {
        cpu: props.writerCpu ?? 1024,
        memoryLimitMiB: props.writerMemoryMiB ?? 4096,
        runtimePlatform: {
          cpuArchitecture: ecs.CpuArchitecture.ARM64,
          operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        },
        ephemeralStorageGiB: 40,
      });
      writerTasks.push(task);
      const consumer = props.kinesisEnhancedFanOut
        ? new kinesis.CfnStreamConsumer(this, `WriterConsumer${g}`, {
            consumerName: `moonlink-writer-${g}`,
            streamArn: this.stream.streamArn,
          })
        : undefined;
      task.addContainer('writer', {
        image,
        logging: ecs.LogDrivers.awsLogs({ logGroup: writerLogs, streamPrefix: `writer-${g}` }),
        environment: {
          ...common,
          MOONLINK_WRITER_GROUP: String(g),
          ...(consumer ? { MOONLINK_KINESIS_CONSUMER_ARN: consumer.attrConsumerArn } : {}),
          ...(glueOn ? { MOONLINK_GLUE_DATABASE_PREFIX: gluePrefix } : {}),
          POWERTOOLS_METRICS_NAMESPACE: 'Moonlink',
          PORT: String(WRITER_PORT),
          HOST: '0.0.0.0',
          NODE_ENV: 'production',
        },
        portMappings: [{ containerPort: WRITER_PORT }],
        healthCheck: {
          command: [
            'CMD',
            'node',
            '-e',
            // Liveness, not readiness: a damaged table must not make ECS restart the writer.
            `fetch('http://127.0.0.1:${WRITER_PORT}/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
          ],
          interval: cdk.Duration.seconds(15),
          timeout: cdk.Duration.seconds(5),
          retries: 3,
          startPeriod: cdk.Duration.seconds(60),
        },
        // The writer flushes every table on SIGTERM; give it time to finish.
        stopTimeout: cdk.Duration.seconds(120),
      });
      this.grantWriter(task.taskRole, glueOn ? gluePrefix : undefined, props.importSources ?? []);
      if (consumer) {
        task.taskRole.addToPrincipalPolicy(
          new iam.PolicyStatement({
            actions: ['kinesis:SubscribeToShard', 'kinesis:DescribeStreamConsumer'],
            resources: [consumer.attrConsumerArn],
          }),
        );
      }
      const service = new ecs.FargateService(this, `Writer${g}`, {
        cluster,
        taskDefinition: task,
        desiredCount: writerTasksPerGroup,
        // With a standby, a deploy starts the new tasks (standbys) before it stops the old ones:
        // the active one drains and releases the group's lease, a new task takes over at once.
        // Alone, the old task stops first (the lease and fencing epochs would make an overlap
        // safe, but the new task would only wait for the lease).
        minHealthyPercent: writerTasksPerGroup === 2 ? 50 : 0,
        maxHealthyPercent: writerTasksPerGroup === 2 ? 200 : 100,
        securityGroups: [writerSg],
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        cloudMapOptions: {
          cloudMapNamespace: namespace,
          name: `writer-${g}`,
          dnsRecordType: servicediscovery.DnsRecordType.A,
        },
        circuitBreaker: { rollback: true },
      });
      writerServices.push(service);
    }

    // ---------------------------------------------------------------- functions (Lambda)
    const fnLogs = new logs.LogGroup(this, 'FunctionLogs', {
      retention,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const makeFunction = (name: string, entry: string, memorySize: number): nodejs.NodejsFunction => {
      // Its own role with inline policies instead of the AWS-managed execution roles (which
      // grant logs:CreateLogGroup and more on every log group): logs only into the functions'
      // log group, and the network-interface actions a function in a VPC needs.
      const role = new iam.Role(this, `${name}FunctionServiceRole`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `Moonlink ${name} function`,
      });
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [fnLogs.logGroupArn],
        }),
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
      );
      const fn = new nodejs.NodejsFunction(this, `${name}Function`, {
        role,
        entry: path.join(ROOT, 'functions', 'lambda', entry),
        handler: 'handler',
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize,
        timeout: cdk.Duration.seconds(30),
        logGroup: fnLogs,
        loggingFormat: lambda.LoggingFormat.JSON,
        tracing: lambda.Tracing.ACTIVE,
        vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        securityGroups: [functionSg],
        environment: {
          ...common,
          POWERTOOLS_SERVICE_NAME: `moonlink-${name.toLowerCase()}`,
          POWERTOOLS_METRICS_NAMESPACE: 'Moonlink',
          NODE_OPTIONS: '--enable-source-maps',
          // Lambda takes request events up to 6 MB; binary bodies arrive base64 (4/3 larger).
          // Up to 4 MiB is taken; above that, bodies that still reach the function get our 413.
          MOONLINK_MAX_BODY_BYTES: String(LAMBDA_MAX_BODY_BYTES),
        },
        bundling: {
          format: nodejs.OutputFormat.CJS,
          target: 'node22',
          minify: true,
          sourceMap: true,
          forceDockerBundling: false,
          // parquet-wasm loads its .wasm file from beside the bundle.
          commandHooks: {
            beforeBundling: () => [],
            beforeInstall: () => [],
            afterBundling: (inputDir: string, outputDir: string) => [
              `cp ${inputDir}/node_modules/parquet-wasm/node/parquet_wasm_bg.wasm ${outputDir}/`,
            ],
          },
        },
      });
      this.functions[name] = fn;
      return fn;
    };
    const ingest = makeFunction('Ingest', 'ingest.ts', 512);
    const tables = makeFunction('Tables', 'tables.ts', 512);
    const read = makeFunction('Read', 'read.ts', 1536);
    const flush = makeFunction('Flush', 'flush.ts', 256);

    // Least privilege, by hand: exact actions on exact resources (no grant helpers' wildcards).
    // Objects by prefix (lib/engine/table-paths.ts): tables/ (data, metadata, index), tmp/ (tail
    // files, read snapshots), deadletter/ (records the writer could not apply).
    const tableObjects = [this.bucket.arnForObjects('tables/*'), this.bucket.arnForObjects('tmp/*')];
    const listTables = new iam.PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': ['tables/*', 'tmp/*'] } },
    });
    const kinesisRead = [
      'kinesis:ListShards',
      'kinesis:DescribeStreamSummary',
      'kinesis:GetShardIterator',
      'kinesis:GetRecords',
    ];
    const catalogRead = ['dynamodb:GetItem', 'dynamodb:Query'];
    const catalogWrite = [
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:DeleteItem',
      'dynamodb:BatchWriteItem',
    ];
    this.allow(ingest, ['kinesis:PutRecord', 'kinesis:PutRecords', ...kinesisRead], [this.stream.streamArn]);
    this.allow(ingest, catalogRead, [this.catalogTable.tableArn]);
    this.allow(tables, [...catalogRead, 'dynamodb:Scan', ...catalogWrite], [this.catalogTable.tableArn]);
    this.allow(tables, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], tableObjects);
    // Import progress (the writer writes the records).
    this.allow(tables, ['s3:GetObject'], [this.bucket.arnForObjects('imports/*')]);
    tables.addToRolePolicy(listTables);
    // Leases only (no batch deletes: those drop tables).
    this.allow(
      read,
      [...catalogRead, 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
      [this.catalogTable.tableArn],
    );
    this.allow(read, ['s3:GetObject'], tableObjects);
    read.addToRolePolicy(listTables);
    this.allow(flush, catalogRead, [this.catalogTable.tableArn]);

    // ---------------------------------------------------------------- Iceberg REST catalog
    // Vended credentials: the tables function assumes this role with a session policy that
    // narrows it to reading one table (lib/aws/vended-credentials.ts).
    const vendedRead = new iam.Role(this, 'VendedReadRole', {
      assumedBy: new iam.ArnPrincipal(tables.role!.roleArn),
      description: 'Read-only access to table objects, narrowed per table by a session policy',
      maxSessionDuration: cdk.Duration.hours(1),
    });
    vendedRead.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [this.bucket.arnForObjects('tables/*')],
      }),
    );
    vendedRead.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': ['tables/*'] } },
      }),
    );
    this.allow(tables, ['sts:AssumeRole'], [vendedRead.roleArn]);
    // Postgres sources' secrets (moonlink/…) are the writer's alone: a table with a source is
    // defined by the writer that owns it (POST /internal/tables/{name}/definition).
    tables.addEnvironment('MOONLINK_VENDED_ROLE_ARN', vendedRead.roleArn);
    this.vendedReadRole = vendedRead;

    // ---------------------------------------------------------------- Glue and Athena
    if (glueOn) {
      this.glueDatabase = new glue.CfnDatabase(this, 'GlueDefaultDatabase', {
        catalogId: this.account,
        databaseInput: {
          name: `${gluePrefix}default`,
          description: 'Moonlink tables of the default namespace (registered by the writer on every commit)',
        },
      });
      const results = new s3.Bucket(this, 'AthenaResults', {
        encryption: s3.BucketEncryption.S3_MANAGED,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        serverAccessLogsBucket: accessLogs,
        serverAccessLogsPrefix: 'athena-results/',
        lifecycleRules: [
          { expiration: cdk.Duration.days(30) },
          { abortIncompleteMultipartUploadAfter: cdk.Duration.days(1) },
        ],
        removalPolicy: cdk.RemovalPolicy.DESTROY,
        autoDeleteObjects: false,
      });
      this.athenaWorkGroup = new athena.CfnWorkGroup(this, 'AthenaWorkGroup', {
        name: `${cdk.Names.uniqueResourceName(this, { maxLength: 40 })}-moonlink`.toLowerCase(),
        description: 'Queries over Moonlink tables (Glue databases moonlink_*)',
        state: 'ENABLED',
        recursiveDeleteOption: true,
        workGroupConfiguration: {
          enforceWorkGroupConfiguration: true,
          publishCloudWatchMetricsEnabled: true,
          engineVersion: { selectedEngineVersion: 'AUTO' },
          resultConfiguration: {
            outputLocation: `s3://${results.bucketName}/results/`,
            encryptionConfiguration: { encryptionOption: 'SSE_S3' },
          },
        },
      });
      new cdk.CfnOutput(this, 'GlueDatabase', { value: `${gluePrefix}default` });
      new cdk.CfnOutput(this, 'AthenaWorkGroupName', { value: this.athenaWorkGroup.ref });
      new cdk.CfnOutput(this, 'AthenaResultsBucket', { value: results.bucketName });
    }

    // ---------------------------------------------------------------- HTTP API
    const apiLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    this.api = new apigw.HttpApi(this, 'Api', {
      description: 'Moonlink Serverless public API',
      defaultAuthorizer: new authorizers.HttpIamAuthorizer(),
      createDefaultStage: false,
    });
    const stage = new apigw.HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: 1000, burstLimit: 2000 },
      accessLogSettings: { destination: new apigw.LogGroupLogDestination(apiLogs) },
    });
    const routes: [apigw.HttpMethod, string, nodejs.NodejsFunction][] = [
      [apigw.HttpMethod.GET, '/health', tables],
      [apigw.HttpMethod.GET, '/health/live', tables],
      [apigw.HttpMethod.GET, '/openapi.json', tables],
      [apigw.HttpMethod.POST, '/tables', tables],
      [apigw.HttpMethod.GET, '/tables', tables],
      [apigw.HttpMethod.GET, '/tables/{name}', tables],
      [apigw.HttpMethod.DELETE, '/tables/{name}', tables],
      [apigw.HttpMethod.POST, '/tables/{name}/rename', tables],
      [apigw.HttpMethod.POST, '/tables/{name}/schema', tables],
      [apigw.HttpMethod.POST, '/tables/{name}/source/resync', tables],
      [apigw.HttpMethod.POST, '/tables/{name}/imports', tables],
      [apigw.HttpMethod.GET, '/tables/{name}/imports/{id}', tables],
      [apigw.HttpMethod.POST, '/tables/{name}/rows', ingest],
      [apigw.HttpMethod.GET, '/tables/{name}/snapshot', read],
      [apigw.HttpMethod.GET, '/tables/{name}/rows', read],
      [apigw.HttpMethod.DELETE, '/leases/{id}', read],
      [apigw.HttpMethod.POST, '/tables/{name}/flush', flush],
      // The Iceberg REST catalog (clients sign with SigV4, service execute-api).
      [apigw.HttpMethod.ANY, '/iceberg/{proxy+}', tables],
    ];
    const integrationsByFn = new Map<nodejs.NodejsFunction, integrations.HttpLambdaIntegration>();
    for (const [method, routePath, fn] of routes) {
      let integration = integrationsByFn.get(fn);
      if (!integration) {
        integration = new integrations.HttpLambdaIntegration(`${fn.node.id}Integration`, fn);
        integrationsByFn.set(fn, integration);
      }
      this.api.addRoutes({ path: routePath, methods: [method], integration });
    }

    // ---------------------------------------------------------------- alarms
    // One topic for every alarm (and its recovery). Encrypted with a key of this stack's own:
    // CloudWatch cannot publish to a topic under the AWS-managed SNS key.
    const alarmKey = new kms.Key(this, 'AlarmTopicKey', {
      enableKeyRotation: true,
      description: 'Moonlink alarm topic',
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    alarmKey.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'Moonlink alarms',
      masterKey: alarmKey,
      enforceSSL: true,
    });
    if (props.alarmEmail)
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    const notify = new cloudwatchActions.SnsAction(this.alarmTopic);
    const alarm = (
      id: string,
      metric: cloudwatch.IMetric,
      threshold: number,
      description: string,
      treatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
      comparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ): void => {
      const a = new cloudwatch.Alarm(this, id, {
        metric,
        threshold,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        comparisonOperator,
        treatMissingData,
        alarmDescription: description,
      });
      a.addAlarmAction(notify);
      a.addOkAction(notify);
    };
    alarm(
      'WriteLagAlarm',
      this.stream.metricGetRecordsIteratorAgeMilliseconds({
        statistic: 'Maximum',
        period: cdk.Duration.minutes(1),
      }),
      60_000,
      'The writer is more than a minute behind the write stream, or reads nothing from it.',
      // No data: no writer is reading the stream.
      cloudwatch.TreatMissingData.BREACHING,
    );
    for (const [name, fn] of Object.entries(this.functions)) {
      alarm(
        `${name}ErrorsAlarm`,
        fn.metricErrors({ period: cdk.Duration.minutes(1) }),
        5,
        `${name} function errors.`,
      );
    }
    alarm(
      'Api5xxAlarm',
      new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName: '5xx',
        dimensionsMap: { ApiId: this.api.apiId, Stage: stage.stageName },
        statistic: 'Sum',
        period: cdk.Duration.minutes(1),
      }),
      10,
      'The API returns server errors.',
    );
    for (const [g, service] of writerServices.entries()) {
      // The writer's own metrics (lib/aws/writer-metrics.ts): the worst minute of group g.
      const writerMetric = (metricName: string) =>
        new cloudwatch.Metric({
          namespace: 'Moonlink',
          metricName,
          dimensionsMap: { service: 'moonlink-writer', WriterGroup: String(g) },
          statistic: 'Maximum',
          period: cdk.Duration.minutes(1),
        });
      alarm(
        `Writer${g}CpuAlarm`,
        service.metricCpuUtilization({ period: cdk.Duration.minutes(5) }),
        90,
        `Writer group ${g} is CPU-bound.`,
      );
      // Tasks running in the group's service (Container Insights), the fewest over `minutes`.
      const runningTasks = (minutes: number) =>
        new cloudwatch.Metric({
          namespace: 'ECS/ContainerInsights',
          metricName: 'RunningTaskCount',
          dimensionsMap: { ClusterName: cluster.clusterName, ServiceName: service.serviceName },
          statistic: 'Minimum',
          period: cdk.Duration.minutes(minutes),
        });
      alarm(
        `Writer${g}RunningAlarm`,
        runningTasks(1),
        1,
        `Writer group ${g} has no running task: its tables take no writes and are not flushed.`,
        cloudwatch.TreatMissingData.BREACHING,
        cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      );
      if (writerTasksPerGroup === 2) {
        alarm(
          `Writer${g}StandbyAlarm`,
          runningTasks(5),
          writerTasksPerGroup,
          `Writer group ${g} runs fewer than ${writerTasksPerGroup} tasks: no standby is ready to take its tables over.`,
          cloudwatch.TreatMissingData.BREACHING,
          cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        );
      }
      // The writer's own metrics (lib/aws/writer-metrics.ts), published every minute: missing
      // data means the writer is not running, which is as bad as a stalled one.
      alarm(
        `Writer${g}EventLoopAlarm`,
        writerMetric('EventLoopDelayMax'),
        1000,
        `Writer group ${g} kept its tables waiting a second or more (event-loop delay), or published no metrics.`,
        cloudwatch.TreatMissingData.BREACHING,
      );
      alarm(
        `Writer${g}CommitLagAlarm`,
        writerMetric('CommitLagSeconds'),
        300,
        `A table of writer group ${g} has changes no Iceberg commit has held for 5 minutes (commits fail or stall; engines reading Iceberg see older data; GET /tables/{name} shows the table's state).`,
      );
      alarm(
        `Writer${g}DeadLettersAlarm`,
        new cloudwatch.Metric({
          namespace: 'Moonlink',
          metricName: 'DeadLetters',
          dimensionsMap: { service: 'moonlink-writer', WriterGroup: String(g) },
          statistic: 'Sum',
          period: cdk.Duration.minutes(1),
        }),
        1,
        `Writer group ${g} moved records it could not apply to deadletter/ in the bucket (a producer writing to the stream in a wrong format).`,
      );
      alarm(
        `Writer${g}PostgresSlotLagAlarm`,
        writerMetric('PostgresSlotLagBytes'),
        1024 ** 3,
        `A Postgres source of writer group ${g} is 1 GiB or more behind its server: the replication slot keeps WAL on the database until it catches up.`,
      );
      if (glueOn)
        alarm(
          `Writer${g}GlueSyncAlarm`,
          writerMetric('GlueSyncLagSeconds'),
          300,
          `Writer group ${g} could not register its newest commits in Glue for 5 minutes: Athena reads older data (ingestion goes on; GET /tables/{name} shows catalogs.glue.lastError).`,
        );
    }

    this.dashboard(writerServices.length, stage.stageName, glueOn);

    new cdk.CfnOutput(this, 'ApiUrl', { value: this.api.apiEndpoint });
    new cdk.CfnOutput(this, 'BucketName', { value: this.bucket.bucketName });
    new cdk.CfnOutput(this, 'CatalogTableName', { value: this.catalogTable.tableName });
    new cdk.CfnOutput(this, 'StreamName', { value: this.stream.streamName });
    new cdk.CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });

    this.acknowledgeFindings(writerTasks);
  }

  /**
   * One CloudWatch dashboard: ingestion lag (stream iterator age, commit lag), throughput (stream
   * records in, API requests), the writers (event-loop delay, memory budget, tables by state,
   * backpressure refusals, dead letters, Postgres slot lag, Glue sync lag), errors (API 5xx,
   * function errors).
   */
  private dashboard(groups: number, stage: string, glueOn: boolean): void {
    const minute = cdk.Duration.minutes(1);
    const writer = (metricName: string, statistic = 'Maximum') =>
      Array.from(
        { length: groups },
        (_, g) =>
          new cloudwatch.Metric({
            namespace: 'Moonlink',
            metricName,
            dimensionsMap: { service: 'moonlink-writer', WriterGroup: String(g) },
            statistic,
            period: minute,
            label: `group ${g}`,
          }),
      );
    const graph = (title: string, left: cloudwatch.IMetric[], unit?: string) =>
      new cloudwatch.GraphWidget({
        title,
        left,
        width: 8,
        height: 6,
        ...(unit ? { leftYAxis: { label: unit } } : {}),
      });
    const api = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName,
        dimensionsMap: { ApiId: this.api.apiId, Stage: stage },
        statistic,
        period: minute,
      });
    const d = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: `${this.stackName}-moonlink` });
    d.addWidgets(
      graph(
        'Stream iterator age (ms)',
        [this.stream.metricGetRecordsIteratorAgeMilliseconds({ statistic: 'Maximum', period: minute })],
        'ms',
      ),
      graph('Commit lag (s, worst table)', writer('CommitLagSeconds'), 's'),
      graph('Records into the stream', [
        this.stream.metricIncomingRecords({ statistic: 'Sum', period: minute }),
      ]),
    );
    d.addWidgets(
      graph('Writer event-loop delay max (ms)', writer('EventLoopDelayMax'), 'ms'),
      graph('Writer memory budget used (%)', writer('MemoryBudgetUsed'), '%'),
      graph('Backpressure refusals', writer('BackpressureRefusals', 'Sum')),
    );
    d.addWidgets(
      graph('Tables damaged / failed', [...writer('TablesDamaged'), ...writer('TablesFailed')]),
      graph('Dead letters', writer('DeadLetters', 'Sum')),
      graph(glueOn ? 'Postgres slot lag (bytes), Glue sync lag (s)' : 'Postgres slot lag (bytes)', [
        ...writer('PostgresSlotLagBytes'),
        ...(glueOn ? writer('GlueSyncLagSeconds') : []),
      ]),
    );
    d.addWidgets(
      graph('API requests and 5xx', [api('Count', 'Sum'), api('5xx', 'Sum')]),
      graph('API latency p99 (ms)', [api('Latency', 'p99')], 'ms'),
      graph(
        'Function errors',
        Object.values(this.functions).map((fn) => fn.metricErrors({ period: minute, label: fn.node.id })),
      ),
    );
  }

  /** The writer reads and writes the bucket, catalog and stream, and its Glue databases; nothing else. */
  private grantWriter(role: iam.IRole, gluePrefix: string | undefined, importSources: string[]): void {
    const policy = (actions: string[], resources: string[]) =>
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources }));
    // Import sources: read only, each bucket's listing limited to the prefix given.
    for (const uri of importSources) {
      const m = /^s3:\/\/([a-z0-9.-]{3,63})\/(.*)$/.exec(uri);
      if (!m)
        throw new Error(`importSources: ${JSON.stringify(uri)} is not s3://bucket/ or s3://bucket/prefix/`);
      const [, bucket, prefix] = m;
      policy(['s3:GetObject'], [`arn:${cdk.Aws.PARTITION}:s3:::${bucket}/${prefix}*`]);
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [`arn:${cdk.Aws.PARTITION}:s3:::${bucket}`],
          ...(prefix ? { conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } } } : {}),
        }),
      );
    }
    policy(['secretsmanager:GetSecretValue'], [this.pgSecrets()]);
    if (gluePrefix !== undefined) {
      const arn = (resource: string) =>
        cdk.Arn.format({ service: 'glue', resource, resourceName: undefined }, this).replace(/\/$/, '');
      const catalog = arn('catalog');
      const databases = `${arn('database')}/${gluePrefix}*`;
      const tables = `${arn('table')}/${gluePrefix}*/*`;
      // Glue checks the catalog, the database and the table of each call.
      policy(['glue:GetDatabase', 'glue:CreateDatabase'], [catalog, databases]);
      policy(
        ['glue:GetTable', 'glue:CreateTable', 'glue:UpdateTable', 'glue:DeleteTable'],
        [catalog, databases, tables],
      );
    }
    policy(
      ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
      ['tables/*', 'tmp/*', 'deadletter/*', 'imports/*'].map((p) => this.bucket.arnForObjects(p)),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': ['tables/*', 'tmp/*', 'deadletter/*', 'imports/*'] } },
      }),
    );
    policy(
      [
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:Scan',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
        'dynamodb:BatchWriteItem',
      ],
      [this.catalogTable.tableArn],
    );
    // PutRecord: the writer appends barrier markers so a flush covers everything acknowledged.
    policy(
      [
        'kinesis:GetRecords',
        'kinesis:GetShardIterator',
        'kinesis:ListShards',
        'kinesis:DescribeStreamSummary',
        'kinesis:PutRecord',
      ],
      [this.stream.streamArn],
    );
  }

  /** Secrets that hold Postgres sources' connections: `moonlink/*` (docs/postgres-source.md). */
  private pgSecrets(): string {
    return `${cdk.Arn.format({ service: 'secretsmanager', resource: 'secret', resourceName: 'moonlink/', arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME }, this)}*`;
  }

  private allow(fn: lambda.IFunction, actions: string[], resources: string[]): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ actions, resources }));
  }

  /** cdk-nag findings this design accepts, each with its reason (see README "AWS deployment"). */
  /**
   * cdk-nag findings accepted, each on the constructs it concerns (a finding anywhere else still
   * fails the check) and written into the template's Metadata (`cdk_nag.rules_to_suppress`,
   * WriteNagSuppressionsToCloudFormationAspect) so an audit of the template sees them.
   */
  private acknowledgeFindings(writerTasks: ecs.FargateTaskDefinition[]): void {
    // Recorded under the plugin's prefix (what `cdk synth` matches) and without it (what
    // cdk-nag's own validateScope, used by the tests, matches).
    const ack = (scopes: IConstruct[], id: string, reason: string): void => {
      for (const scope of scopes)
        cdk.Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason }, { id, reason });
    };
    const functions = Object.values(this.functions);
    const functionRoles = functions.map((f) => f.role!);
    ack(
      functionRoles,
      'AwsSolutions-IAM5[Resource::*]',
      "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) and the EC2 network-interface actions of a function in a VPC (Lambda's own AWSLambdaVPCAccessExecutionRole grants them on * too) have no useful resource-level permissions; nothing else is granted on *.",
    );
    ack(
      writerTasks.map((t) => t.executionRole!),
      'AwsSolutions-IAM5[Resource::*]',
      'ECR GetAuthorizationToken (pulling the writer image) has no resource-level permissions; nothing else is granted on *.',
    );
    const bucket = this.getLogicalId(this.bucket.node.defaultChild as cdk.CfnElement);
    for (const [prefix, who] of [
      [
        'tables',
        [this.functions.Tables.role!, this.functions.Read.role!, ...writerTasks.map((t) => t.taskRole)],
      ],
      [
        'tmp',
        [this.functions.Tables.role!, this.functions.Read.role!, ...writerTasks.map((t) => t.taskRole)],
      ],
      ['deadletter', writerTasks.map((t) => t.taskRole)],
      ['imports', [this.functions.Tables.role!, ...writerTasks.map((t) => t.taskRole)]],
    ] as [string, IConstruct[]][]) {
      ack(
        who,
        `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${prefix}/*]`,
        `Object keys under ${prefix}/ are made at run time (one per data file, deletion vector, metadata file, snapshot); the grant is the prefix, the actions are listed exactly.`,
      );
    }
    for (const uri of this.importSources) {
      const [, bucket, prefix] = /^s3:\/\/([^/]+)\/(.*)$/.exec(uri) ?? [];
      ack(
        writerTasks.map((t) => t.taskRole),
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${bucket}/${prefix}*]`,
        `Imports read the files under ${uri}, named at import time; read only, that prefix only (importSources).`,
      );
    }
    if (this.glueDatabase) {
      const glueArn = (kind: string) => `arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:${kind}`;
      const prefix = this.glueDatabase.databaseInput as glue.CfnDatabase.DatabaseInputProperty;
      const p = String(prefix.name).replace(/default$/, '');
      ack(
        writerTasks.map((t) => t.taskRole),
        `AwsSolutions-IAM5[Resource::${glueArn(`database/${p}*`)}]`,
        `The writer creates a Glue database per namespace on demand; only databases named ${p}* (this stack's).`,
      );
      ack(
        writerTasks.map((t) => t.taskRole),
        `AwsSolutions-IAM5[Resource::${glueArn(`table/${p}*/*`)}]`,
        `The writer registers every table it writes; only tables in this stack's databases (${p}*).`,
      );
    }
    ack(
      writerTasks.map((t) => t.taskRole),
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:moonlink/*]',
      'Postgres sources name their connection secret at attach time, and the writer reads it (to define the table and to stream); only secrets under moonlink/ (Secrets Manager appends a random suffix to every ARN).',
    );
    ack(
      [this.vendedReadRole],
      `AwsSolutions-IAM5[Resource::<${this.getLogicalId(this.bucket.node.defaultChild as cdk.CfnElement)}.Arn>/tables/*]`,
      'The ceiling of vended read credentials: every table object; each AssumeRole narrows it to one table with a session policy (lib/aws/vended-credentials.ts).',
    );
    ack(
      functions,
      'AwsSolutions-L1',
      'Functions run nodejs22.x, the runtime this project targets and tests; the rule flags anything but the newest runtime.',
    );
    ack(
      writerTasks,
      'AwsSolutions-ECS2',
      'Container environment variables hold only resource names (bucket, table, stream, group); no secrets.',
    );
    cdk.Aspects.of(this).add(new WriteNagSuppressionsToCloudFormationAspect());
  }
}
