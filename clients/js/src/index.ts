export { MediagraphClient, type ClientOptions } from "./client.js";
export { devSignIn, type DevSession } from "./dev.js";
export * from "./errors.js";
export { sha256Hex } from "./hash.js";
export { request, type TokenSource } from "./http.js";
export {
  ConnectionClosedError,
  createLiveClient,
  watchMediaEvents,
  watchMediaStatus,
  type LiveHandlers,
  type LiveOptions,
  type MediaEvent,
} from "./live.js";
export { Pager, pages, type Connection, type PageFetcher } from "./pages.js";
export { send, type SendOptions, type SignedRequest } from "./transfer.js";
export {
  pendingUploads,
  startUpload,
  type KeyValueStorage,
  type PendingUpload,
  type Media,
  type UploadOptions,
  type UploadProgress,
  type UploadTask,
} from "./upload.js";
export * from "./generated/documents.js";
export type * from "./generated/graphql.js";
