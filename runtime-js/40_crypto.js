// The `crypto` global: `randomUUID()` and `getRandomValues()` from the host's CSPRNG, and
// `subtle` (41_subtle.js).
import { core, primordials } from "ext:core/mod.js";
import { CryptoKey, SubtleCrypto, subtle } from "ext:eddy/41_subtle.js";

const {
  ArrayBufferIsView,
  ArrayPrototypeIncludes,
  ObjectFreeze,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetSymbolToStringTag,
  Uint8Array,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteOffset,
} = primordials;
const { op_eddy_crypto_random_uuid, op_eddy_crypto_fill_random } = core.ops;
const domException = core.loadExtScript("ext:deno_web/01_dom_exception.js");

const INTEGER_ARRAYS = [
  "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
  "Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array",
];

function getRandomValues(array) {
  const tag = ArrayBufferIsView(array) ? TypedArrayPrototypeGetSymbolToStringTag(array) : undefined;
  if (tag === undefined || !ArrayPrototypeIncludes(INTEGER_ARRAYS, tag)) {
    throw new domException.DOMException(
      "getRandomValues: argument must be an integer typed array",
      "TypeMismatchError",
    );
  }
  const length = TypedArrayPrototypeGetByteLength(array);
  if (length > 65536) {
    throw new domException.DOMException(
      `getRandomValues: ${length} bytes requested, the limit is 65536`,
      "QuotaExceededError",
    );
  }
  op_eddy_crypto_fill_random(new Uint8Array(
    TypedArrayPrototypeGetBuffer(array),
    TypedArrayPrototypeGetByteOffset(array),
    length,
  ));
  return array;
}

function randomUUID() {
  return op_eddy_crypto_random_uuid();
}

const crypto = ObjectFreeze({ getRandomValues, randomUUID, subtle });

export { crypto, CryptoKey, SubtleCrypto };
