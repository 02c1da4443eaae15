export {
  CATALOG_KEY,
  HEARTBEAT_KEY,
  API_KEY_KEY_PREFIX,
  SERVICE_KEY_PREFIX,
  accessBucketName,
  apiKeyKey,
  serviceIdentityKey,
  deleteAccessBucket,
  openAccessBucket,
  policyKey,
  principalKey,
  type OpenAccessBucketOptions,
} from './bucket.js';
export { AccessModelPublisher, type AccessModelPublisherOptions } from './publisher.js';
export {
  AccessModelReader,
  type AccessModelKeys,
  type AccessModelReaderOptions,
  type AccessModelStats,
  type ApiKeyChangeListener,
  type ServiceIdentityChangeListener,
  type CatalogChangeListener,
  type PrincipalChangeListener,
} from './reader.js';
export { measureColdLoad, type ColdLoadKind, type ColdLoadMeasurement } from './cold-load.js';
