/* Line envelopes exactly as the writer spells them, read in one call: the reader's fastest path.
 *
 *   {"v":1,"alg":"A256GCM","kid":K,"sid":S,"seq":N,"n":NONCE,"ct":CT}
 *   {"v":1,"alg":"A256GCM","kid":K,"sid":S,"seq":N,"final":true,"n":NONCE,"ct":CT}   (end marker)
 *
 * scan_lines(data, count) reads ``count`` such lines (each ending in '\n', nothing after them) of
 * one stream: the same K and S on every line, counters N running on by one, ``final`` only on the
 * last line, base64 spelled canonically (padding bits zero, as the exact reader requires). It
 * returns (kid, sid, first_counter, final, nonces, ciphertexts), or None at anything else, and the
 * caller reads the lines another way (msgspec, then line by line), which gives the exact verdict.
 * Decryption, keys and stream state stay in Python (dmca_aes_gcm/block.py).
 *
 * Every scan of a line stops at its '\n', which no accepted token holds, so no read passes it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NONCE_CHARS 16 /* 12 bytes */
#define NONCE_BYTES 12
#define TAG_BYTES 16
#define ID_MAX 64 /* longer key or stream ids: the caller's patterns refuse them anyway */
#define COUNTER_MAX ((uint64_t)1 << 53)

static const char HEAD[] = "{\"v\":1,\"alg\":\"A256GCM\",\"kid\":\"";
static const char SID[] = "\",\"sid\":\"";
static const char SEQ[] = "\",\"seq\":";
static const char FINAL_N[] = ",\"final\":true,\"n\":\"";
static const char N[] = ",\"n\":\"";
static const char CT[] = "\",\"ct\":\"";
static const char TAIL[] = "\"}\n";

static signed char B64[256]; /* value of a base64 character, -1 for any other byte */
/* the same values moved to their place in a 24-bit group, bit 31 set for any other byte */
static uint32_t T0[256], T1[256], T2[256], T3[256];
#define BAD 0x80000000u

static void b64_init(void) {
    memset(B64, -1, sizeof B64);
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int c = 0; c < 256; c++)
        T0[c] = T1[c] = T2[c] = T3[c] = BAD;
    for (int i = 0; i < 64; i++) {
        unsigned char c = (unsigned char)alpha[i];
        B64[c] = (signed char)i;
        T0[c] = (uint32_t)i << 18;
        T1[c] = (uint32_t)i << 12;
        T2[c] = (uint32_t)i << 6;
        T3[c] = (uint32_t)i;
    }
}

/* Canonical base64 of s[0:n] into out (room for n / 4 * 3 bytes); the decoded length, or -1. */
static Py_ssize_t b64_decode(const unsigned char *s, Py_ssize_t n, unsigned char *out) {
    if (n == 0 || n % 4)
        return -1;
    int pad = (s[n - 1] == '=') + (s[n - 1] == '=' && s[n - 2] == '=');
    Py_ssize_t full = (n - (pad ? 4 : 0)) / 4, o = 0;
    uint32_t bad = 0; /* checked once at the end: no branch per group */
    for (Py_ssize_t i = 0; i < full; i++, s += 4) {
        uint32_t v = T0[s[0]] | T1[s[1]] | T2[s[2]] | T3[s[3]];
        bad |= v;
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8);
        out[o + 2] = (unsigned char)v;
        o += 3;
    }
    if (bad & BAD)
        return -1;
    if (pad == 1) { /* "XYZ=": two bytes, Z's low 2 bits unused and zero */
        int a = B64[s[0]], b = B64[s[1]], c = B64[s[2]];
        if ((a | b | c) < 0 || (c & 3))
            return -1;
        out[o++] = (unsigned char)(a << 2 | b >> 4);
        out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
    } else if (pad == 2) { /* "XY==": one byte, Y's low 4 bits unused and zero */
        int a = B64[s[0]], b = B64[s[1]];
        if ((a | b) < 0 || (b & 15))
            return -1;
        out[o++] = (unsigned char)(a << 2 | b >> 4);
    }
    return o;
}

/* bytes up to the next '"' at p, all printable ASCII other than '\\' (no escapes); NULL if not */
static const unsigned char *plain_string_end(const unsigned char *p) {
    while (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
        p++;
    return *p == '"' ? p : NULL;
}

/* The key or stream id at *pp, up to its closing '"': the first line's sets *id, every later
 * line's must equal it (one stream per call). 1 with *pp at the quote, 0 to give up. */
static int same_id(const unsigned char **pp, const unsigned char **id, Py_ssize_t *id_len, int first) {
    const unsigned char *s = *pp, *e = plain_string_end(s);
    if (e == NULL || e == s || e - s > ID_MAX)
        return 0;
    if (first) {
        *id = s;
        *id_len = e - s;
    } else if (e - s != *id_len || memcmp(s, *id, (size_t)*id_len) != 0) {
        return 0;
    }
    *pp = e;
    return 1;
}

#define EXPECT(lit)                                                                                     \
    do {                                                                                                \
        if ((size_t)(eol + 1 - p) < sizeof(lit) - 1 || memcmp(p, lit, sizeof(lit) - 1) != 0)             \
            goto giveup;                                                                                \
        p += sizeof(lit) - 1;                                                                           \
    } while (0)

static PyObject *scan_lines(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer data;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "y*n", &data, &count))
        return NULL;
    PyObject *nonces = NULL, *cts = NULL, *result = NULL;
    if (count <= 0 || count > data.len) /* every line holds at least its '\n' */
        goto giveup;
    nonces = PyList_New(count);
    cts = PyList_New(count);
    if (nonces == NULL || cts == NULL)
        goto error;
    const unsigned char *p = data.buf, *end = p + data.len;
    const unsigned char *kid = NULL, *sid = NULL;
    Py_ssize_t kid_len = 0, sid_len = 0;
    uint64_t first = 0;
    int final = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (p >= end || final) /* a final envelope only as the last line */
            goto giveup;
        const unsigned char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            goto giveup;
        EXPECT(HEAD);
        if (!same_id(&p, &kid, &kid_len, i == 0))
            goto giveup;
        EXPECT(SID);
        if (!same_id(&p, &sid, &sid_len, i == 0))
            goto giveup;
        EXPECT(SEQ);
        uint64_t seq = 0;
        int digits = 0;
        if (*p == '0' && p[1] >= '0' && p[1] <= '9')
            goto giveup; /* a leading zero is not JSON */
        while (*p >= '0' && *p <= '9') {
            if (++digits > 16)
                goto giveup;
            seq = seq * 10 + (uint64_t)(*p - '0');
            p++;
        }
        if (digits == 0 || seq > COUNTER_MAX)
            goto giveup;
        if (i == 0)
            first = seq;
        else if (seq != first + (uint64_t)i)
            goto giveup;
        if (*p == ',' && p[1] == '"' && p[2] == 'f') {
            EXPECT(FINAL_N);
            final = 1;
        } else {
            EXPECT(N);
        }
        unsigned char nonce[NONCE_BYTES];
        if (eol - p < NONCE_CHARS || b64_decode(p, NONCE_CHARS, nonce) != NONCE_BYTES)
            goto giveup;
        p += NONCE_CHARS;
        EXPECT(CT);
        /* ct runs to the line's closing '"}': base64 has no '"', so a stray one fails the decode */
        const unsigned char *c = p;
        if (eol - c < 2)
            goto giveup;
        p = eol - 2;
        Py_ssize_t clen = p - c;
        if (clen < 4 || clen % 4)
            goto giveup;
        Py_ssize_t size = clen / 4 * 3 - (c[clen - 1] == '=') - (c[clen - 1] == '=' && c[clen - 2] == '=');
        if (size < TAG_BYTES)
            goto giveup;
        PyObject *ct = PyBytes_FromStringAndSize(NULL, size);
        if (ct == NULL)
            goto error;
        PyList_SET_ITEM(cts, i, ct);
        if (b64_decode(c, clen, (unsigned char *)PyBytes_AS_STRING(ct)) != size)
            goto giveup;
        PyObject *n = PyBytes_FromStringAndSize((const char *)nonce, NONCE_BYTES);
        if (n == NULL)
            goto error;
        PyList_SET_ITEM(nonces, i, n);
        EXPECT(TAIL);
    }
    if (p != end)
        goto giveup;
    PyObject *k = PyUnicode_DecodeASCII((const char *)kid, kid_len, NULL);
    PyObject *s = k ? PyUnicode_DecodeASCII((const char *)sid, sid_len, NULL) : NULL;
    if (s == NULL) {
        Py_XDECREF(k);
        goto error;
    }
    result = Py_BuildValue("NNKONN", k, s, (unsigned long long)first, final ? Py_True : Py_False, nonces,
                           cts);
    PyBuffer_Release(&data);
    return result;
giveup:
    Py_XDECREF(nonces);
    Py_XDECREF(cts);
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
error:
    Py_XDECREF(nonces);
    Py_XDECREF(cts);
    PyBuffer_Release(&data);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan_lines", scan_lines, METH_VARARGS,
     "scan_lines(data, count) -> (kid, sid, first_counter, final, nonces, ciphertexts), or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef envscan_module = {
    PyModuleDef_HEAD_INIT, "_envscan", "Line envelopes in the writer's spelling, read in one call.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__envscan(void) {
    b64_init();
    return PyModule_Create(&envscan_module);
}
