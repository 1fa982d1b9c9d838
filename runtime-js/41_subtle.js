// `crypto.subtle`: the part of Web Crypto that integrations need to sign and check
// requests: digest (SHA-1/256/384/512) and HMAC keys (importKey, generateKey, exportKey,
// sign, verify). Other algorithms reject with NotSupportedError, as the spec asks.
import { core, primordials } from "ext:core/mod.js";

const {
  ArrayBufferIsView,
  ArrayBufferPrototypeGetByteLength,
  ArrayBufferPrototypeSlice,
  ArrayPrototypeEvery,
  ArrayPrototypeIncludes,
  ArrayPrototypeFilter,
  ObjectFreeze,
  ObjectPrototypeIsPrototypeOf,
  Promise,
  PromiseReject,
  SafeWeakMap,
  StringPrototypeToUpperCase,
  Symbol,
  SymbolToStringTag,
  TypeError,
  TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeSlice,
  Uint8Array,
  DataViewPrototypeGetBuffer,
  DataViewPrototypeGetByteLength,
  DataViewPrototypeGetByteOffset,
  TypedArrayPrototypeGetSymbolToStringTag,
} = primordials;
const {
  op_eddy_crypto_digest,
  op_eddy_crypto_fill_random,
  op_eddy_crypto_hmac_sign,
  op_eddy_crypto_hmac_verify,
} = core.ops;
const { DOMException } = core.loadExtScript("ext:deno_web/01_dom_exception.js");

const HASHES = ["SHA-1", "SHA-256", "SHA-384", "SHA-512"];
// HMAC's default key length is the hash's block size, in bits.
const BLOCK_BITS = { "SHA-1": 512, "SHA-256": 512, "SHA-384": 1024, "SHA-512": 1024 };
const HMAC_USAGES = ["sign", "verify"];
const illegal = Symbol("illegal constructor");
// Key bytes live here, out of reach of handler code that only holds the CryptoKey.
const keyMaterial = new SafeWeakMap();

class CryptoKey {
  #type; #extractable; #algorithm; #usages;
  constructor(token, type, extractable, algorithm, usages) {
    if (token !== illegal) throw new TypeError("Illegal constructor");
    this.#type = type;
    this.#extractable = extractable;
    this.#algorithm = ObjectFreeze(algorithm);
    this.#usages = ObjectFreeze(usages);
  }
  get type() { return this.#type; }
  get extractable() { return this.#extractable; }
  get algorithm() { return this.#algorithm; }
  get usages() { return this.#usages; }
  get [SymbolToStringTag]() { return "CryptoKey"; }
}

// WebIDL BufferSource, copied so later changes by the caller do not affect the operation.
function bufferSource(value, what) {
  if (ArrayBufferIsView(value)) {
    if (TypedArrayPrototypeGetSymbolToStringTag(value) === undefined) {
      const buffer = DataViewPrototypeGetBuffer(value);
      const offset = DataViewPrototypeGetByteOffset(value);
      return new Uint8Array(ArrayBufferPrototypeSlice(buffer, offset, offset + DataViewPrototypeGetByteLength(value)));
    }
    const view = new Uint8Array(
      TypedArrayPrototypeGetBuffer(value),
      TypedArrayPrototypeGetByteOffset(value),
      TypedArrayPrototypeGetByteLength(value),
    );
    return TypedArrayPrototypeSlice(view);
  }
  try {
    ArrayBufferPrototypeGetByteLength(value);
  } catch {
    throw new TypeError(`${what} must be an ArrayBuffer or an ArrayBuffer view`);
  }
  return new Uint8Array(ArrayBufferPrototypeSlice(value, 0));
}

function algorithmName(algorithm) {
  const name = typeof algorithm === "string" ? algorithm : algorithm?.name;
  if (typeof name !== "string") throw new TypeError("algorithm must be a string or an object with a name");
  return StringPrototypeToUpperCase(name);
}

function hashName(algorithm) {
  const name = algorithmName(algorithm);
  if (!ArrayPrototypeIncludes(HASHES, name)) {
    throw new DOMException(`hash algorithm ${name} is not supported (use ${HASHES})`, "NotSupportedError");
  }
  return name;
}

function hmacParams(algorithm) {
  if (algorithmName(algorithm) !== "HMAC") {
    throw new DOMException(`algorithm ${algorithmName(algorithm)} is not supported: only HMAC keys`, "NotSupportedError");
  }
  if (algorithm.hash === undefined) throw new TypeError("HMAC needs a hash, e.g. { name: \"HMAC\", hash: \"SHA-256\" }");
  return { hash: hashName(algorithm.hash), length: algorithm.length };
}

function checkUsages(usages) {
  if (!ArrayPrototypeEvery(usages, (u) => ArrayPrototypeIncludes(HMAC_USAGES, u))) {
    throw new DOMException(`HMAC keys may be used to ${HMAC_USAGES} only`, "SyntaxError");
  }
  if (usages.length === 0) throw new DOMException("a secret key needs at least one usage", "SyntaxError");
  return ArrayPrototypeFilter(HMAC_USAGES, (u) => ArrayPrototypeIncludes(usages, u));
}

function newHmacKey(bytes, hash, extractable, usages) {
  const key = new CryptoKey(illegal, "secret", !!extractable, { name: "HMAC", hash: { name: hash }, length: bytes.length * 8 }, usages);
  keyMaterial.set(key, bytes);
  return key;
}

function importKey(format, keyData, algorithm, extractable, keyUsages) {
  if (format !== "raw") throw new DOMException(`key format ${format} is not supported: use "raw"`, "NotSupportedError");
  const { hash, length } = hmacParams(algorithm);
  const usages = checkUsages([...keyUsages]);
  const bytes = bufferSource(keyData, "keyData");
  if (bytes.length === 0) throw new DOMException("an HMAC key cannot be empty", "DataError");
  if (length !== undefined && length !== bytes.length * 8) {
    throw new DOMException(`length ${length} does not match the ${bytes.length * 8}-bit key`, "DataError");
  }
  return newHmacKey(bytes, hash, extractable, usages);
}

function generateKey(algorithm, extractable, keyUsages) {
  const { hash, length } = hmacParams(algorithm);
  const usages = checkUsages([...keyUsages]);
  const bits = length ?? BLOCK_BITS[hash];
  if (bits === 0 || bits % 8 !== 0 || bits > 8192) {
    throw new DOMException("HMAC key length must be a whole number of bytes, 8 to 8192 bits", "OperationError");
  }
  const bytes = new Uint8Array(bits / 8);
  op_eddy_crypto_fill_random(bytes);
  return newHmacKey(bytes, hash, extractable, usages);
}

function keyFor(key, algorithm, usage) {
  if (!ObjectPrototypeIsPrototypeOf(CryptoKey.prototype, key)) throw new TypeError("key must be a CryptoKey");
  if (algorithmName(algorithm) !== key.algorithm.name) {
    throw new DOMException(`the key is for ${key.algorithm.name}, not ${algorithmName(algorithm)}`, "InvalidAccessError");
  }
  if (!ArrayPrototypeIncludes(key.usages, usage)) {
    throw new DOMException(`the key may not be used to ${usage}`, "InvalidAccessError");
  }
  return keyMaterial.get(key);
}

// Every method answers with a promise, rejected rather than thrown, like the spec's.
function promised(fn) {
  return function (...args) {
    try {
      return new Promise((resolve) => resolve(fn(...args)));
    } catch (error) {
      return PromiseReject(error);
    }
  };
}

class SubtleCrypto {
  constructor(token) {
    if (token !== illegal) throw new TypeError("Illegal constructor");
  }
  get [SymbolToStringTag]() { return "SubtleCrypto"; }
}

const methods = {
  digest: (algorithm, data) => op_eddy_crypto_digest(hashName(algorithm), bufferSource(data, "data")),
  importKey,
  generateKey,
  exportKey(format, key) {
    if (!ObjectPrototypeIsPrototypeOf(CryptoKey.prototype, key)) throw new TypeError("key must be a CryptoKey");
    if (format !== "raw") throw new DOMException(`key format ${format} is not supported: use "raw"`, "NotSupportedError");
    if (!key.extractable) throw new DOMException("the key is not extractable", "InvalidAccessError");
    return TypedArrayPrototypeGetBuffer(TypedArrayPrototypeSlice(keyMaterial.get(key)));
  },
  sign(algorithm, key, data) {
    const bytes = keyFor(key, algorithm, "sign");
    return op_eddy_crypto_hmac_sign(key.algorithm.hash.name, bytes, bufferSource(data, "data"));
  },
  verify(algorithm, key, signature, data) {
    const bytes = keyFor(key, algorithm, "verify");
    const mac = bufferSource(signature, "signature");
    return op_eddy_crypto_hmac_verify(key.algorithm.hash.name, bytes, bufferSource(data, "data"), mac);
  },
};
for (const name in methods) {
  SubtleCrypto.prototype[name] = promised(methods[name]);
}

const subtle = new SubtleCrypto(illegal);

export { CryptoKey, SubtleCrypto, subtle };
