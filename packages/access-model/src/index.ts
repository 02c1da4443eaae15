export {
  CATALOG_KEY,
  HEARTBEAT_KEY,
  accessBucketName,
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
  type CatalogChangeListener,
  type PrincipalChangeListener,
} from './reader.js';
export { measureColdLoad, type ColdLoadMeasurement } from './cold-load.js';
