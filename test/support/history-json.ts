import { createRequire } from 'node:module';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

// The SDK's historyToJSON/historyFromJSON (@temporalio/common/lib/proto-utils) fail here with
// "type must be a Type": this install holds two copies of protobufjs 8 (one under
// @temporalio/common, one under @temporalio/proto) and protojson checks `instanceof Type` against
// its own copy. Loading protojson from the copy @temporalio/proto uses keeps both sides one copy.
// Same JSON format as the SDK's and the Temporal CLI's (`temporal workflow show --output json`).
interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options: { ignoreUnknownFields: boolean }): unknown;
}
interface LookupRoot {
  lookupType(name: string): unknown;
}
const protojson = createRequire(require.resolve('@temporalio/proto'))('protobufjs/ext/protojson') as ProtoJson;
const historyType = (patchProtobufRoot(proto) as unknown as LookupRoot).lookupType('temporal.api.history.v1.History');

export type History = proto.temporal.api.history.v1.IHistory;

/** A history as proto JSON text, as the Temporal CLI and UI export it. */
export function historyToJSON(history: History): string {
  return JSON.stringify(
    protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)),
    null,
    2,
  );
}

/** Parses a history written by historyToJSON (or exported by the Temporal CLI). */
export function historyFromJSON(json: unknown): History {
  return protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History;
}
