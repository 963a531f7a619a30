/*
 * protocol._ed25519_batch: verify many Ed25519 signatures in one call, without the GIL.
 *
 * Why this exists (issue 4, docs/collector.md "Targets"): an ingest worker verifies every
 * received envelope. Each call into `cryptography`'s verify releases the GIL and takes it back,
 * so the worker's writer thread and its verifying thread hand the GIL over once per message
 * and wait for each other. Here one call verifies a whole batch while the GIL is released
 * once, so the writer commits the previous batch meanwhile.
 *
 * The verification itself is OpenSSL's Ed25519 (RFC 8032 section 5.1.7) through the public
 * EVP interface, the same algorithm `cryptography` calls; nothing cryptographic is written
 * here. protocol/ed25519.py is the Python face and the fallback when this is not built;
 * tests/protocol/test_ed25519_batch.py checks both give the same answers.
 *
 *   verify_many(keys, signatures, messages) -> bytes
 *
 * keys: 32-byte raw public keys, signatures: 64-byte signatures, messages: bytes, all of the
 * same length n. Returns n bytes, 1 where the signature verifies and 0 where it does not
 * (including a key or signature of the wrong length, or a key OpenSSL refuses).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Keys seen earlier in the same call are reused: a batch usually holds many records from
 * each of few agents. Beyond this many distinct keys a key is parsed for each use. */
#define KEY_CACHE 512

typedef struct {
    const unsigned char *key, *signature, *message;
    Py_ssize_t key_len, signature_len, message_len;
} item_t;

typedef struct {
    const unsigned char *raw;
    EVP_PKEY *pkey;
} cached_key_t;

static EVP_PKEY *key_for(cached_key_t *cache, int *cached, const unsigned char *raw, int *owned) {
    *owned = 0;
    for (int i = 0; i < *cached; i++) {
        if (cache[i].raw == raw || memcmp(cache[i].raw, raw, 32) == 0) return cache[i].pkey;
    }
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
    if (pkey == NULL) return NULL;
    if (*cached < KEY_CACHE) {
        cache[*cached].raw = raw;
        cache[*cached].pkey = pkey;
        (*cached)++;
    } else {
        *owned = 1;
    }
    return pkey;
}

/* Returns 0, or -1 when OpenSSL or malloc could not give us a context (nothing verified). */
static int verify_items(const item_t *items, Py_ssize_t n, unsigned char *results) {
    cached_key_t *cache = calloc(KEY_CACHE, sizeof(cached_key_t));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int cached = 0;
    if (cache == NULL || ctx == NULL) {
        EVP_MD_CTX_free(ctx);
        free(cache);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const item_t *it = &items[i];
        results[i] = 0;
        if (it->key_len != 32 || it->signature_len != 64) continue;
        int owned;
        EVP_PKEY *pkey = key_for(cache, &cached, it->key, &owned);
        if (pkey == NULL) continue;
        if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
            EVP_DigestVerify(ctx, it->signature, 64, it->message, (size_t)it->message_len) == 1) {
            results[i] = 1;
        }
        EVP_MD_CTX_reset(ctx);
        if (owned) EVP_PKEY_free(pkey);
    }
    for (int i = 0; i < cached; i++) EVP_PKEY_free(cache[i].pkey);
    EVP_MD_CTX_free(ctx);
    free(cache);
    return 0;
}

static int take_bytes(PyObject *seq, Py_ssize_t i, const char *what, const unsigned char **data,
                      Py_ssize_t *len) {
    PyObject *obj = PyTuple_GET_ITEM(seq, i);
    if (!PyBytes_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s[%zd] must be bytes, not %.100s", what, i,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *data = (const unsigned char *)PyBytes_AS_STRING(obj);
    *len = PyBytes_GET_SIZE(obj);
    return 0;
}

static PyObject *verify_many(PyObject *module, PyObject *args) {
    PyObject *keys_in, *signatures_in, *messages_in;
    if (!PyArg_ParseTuple(args, "OOO:verify_many", &keys_in, &signatures_in, &messages_in)) {
        return NULL;
    }
    /* Tuples: immutable, so no other thread can drop an item while the GIL is released. */
    PyObject *keys = PySequence_Tuple(keys_in);
    PyObject *signatures = keys ? PySequence_Tuple(signatures_in) : NULL;
    PyObject *messages = signatures ? PySequence_Tuple(messages_in) : NULL;
    PyObject *result = NULL;
    item_t *items = NULL;
    if (messages == NULL) goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    if (PyTuple_GET_SIZE(signatures) != n || PyTuple_GET_SIZE(messages) != n) {
        PyErr_SetString(PyExc_ValueError, "keys, signatures and messages differ in length");
        goto done;
    }
    items = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(item_t));
    if (items == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (take_bytes(keys, i, "keys", &items[i].key, &items[i].key_len) < 0 ||
            take_bytes(signatures, i, "signatures", &items[i].signature,
                       &items[i].signature_len) < 0 ||
            take_bytes(messages, i, "messages", &items[i].message, &items[i].message_len) < 0) {
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize(NULL, n);
    if (result == NULL) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = verify_items(items, n, out);
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_CLEAR(result);
        PyErr_SetString(PyExc_MemoryError, "no memory for an OpenSSL verification context");
    }
done:
    PyMem_Free(items);
    Py_XDECREF(keys);
    Py_XDECREF(signatures);
    Py_XDECREF(messages);
    return result;
}

static PyMethodDef methods[] = {
    {"verify_many", verify_many, METH_VARARGS,
     "verify_many(keys, signatures, messages) -> bytes: 1 per valid Ed25519 signature, else 0"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "protocol._ed25519_batch",
    "Many Ed25519 verifications in one call with the GIL released (see protocol/ed25519.py).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__ed25519_batch(void) { return PyModule_Create(&module); }
