/* Plain telemetry lines straight into numeric columns: SIDRCE's fastest path.
 *
 * A Scanner reads a block of newline-terminated lines, each one JSON object with the record's
 * fields (the table comes from Python, dmca_core/telemetry/record.py), and writes the numbers the
 * report needs into caller-owned float64 columns, each line's key (domain, hypothesis,
 * intervention, study, outcome; the last two optional, None where absent) as an index into a list
 * of distinct keys, and each ts as seconds since 1970.
 *
 * It takes only the common shape and gives up on the whole block (returns None) at anything
 * else: escapes, control characters or malformed UTF-8 in a string, an unknown or repeated key, a missing required
 * field or ts, a number that is not a finite double or breaks its field's rule, too many distinct
 * keys. The caller then reads the block with msgspec or line by line, which gives the exact
 * verdict. So this code must never accept a line the contract refuses, and must give the value
 * every other reader gives; it need not accept every valid line.
 *
 * Every scan of a line stops at its '\n' (no token may contain one), so no read passes the end.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAXF 64        /* fields a record may name */
#define MAXCOLS 16     /* numeric output columns */
#define MAXTRIPLES 1024 /* distinct keys (domain, hypothesis, intervention, study, outcome) per block */
#define HSLOTS 2048    /* hash slots for them: a power of two, 2x MAXTRIPLES */
#define NPARTS 5       /* the parts of a key, in role order */
#define NUMBUF 64      /* longest number text handed to the exact converter */

enum { K_STR, K_INT0, K_NUM0, K_NUM, K_TS, K_VERSION };
enum { R_NONE, R_DOMAIN, R_HYP, R_INTERV, R_STUDY, R_OUTCOME };

typedef struct {
    PyObject_HEAD
    int nfields;
    int ncols;
    char *names[MAXF];
    Py_ssize_t lens[MAXF];
    unsigned char kind[MAXF];
    signed char col[MAXF];
    unsigned char role[MAXF];
    uint64_t required;
    long long version;
    int ts_field;
} Scanner;

static void Scanner_dealloc(Scanner *self) {
    for (int i = 0; i < self->nfields; i++)
        PyMem_Free(self->names[i]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Scanner(fields, ncols, version): fields is a sequence of (name, kind, column, role), column
 * -1 when the value is only checked; a field whose kind is given in upper case is required. */
static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    PyObject *fields;
    int ncols;
    long long version;
    (void)kwds;
    if (!PyArg_ParseTuple(args, "OiL", &fields, &ncols, &version))
        return -1;
    if (ncols < 0 || ncols > MAXCOLS) {
        PyErr_SetString(PyExc_ValueError, "too many columns");
        return -1;
    }
    PyObject *seq = PySequence_Fast(fields, "fields must be a sequence");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAXF || self->nfields != 0) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many fields, or initialised twice");
        return -1;
    }
    self->ts_field = -1;
    self->required = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *name;
        Py_ssize_t len;
        int kind, col, role, req;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "s#iiip", &name, &len, &kind, &col, &role,
                              &req)) {
            Py_DECREF(seq);
            return -1;
        }
        if (kind < K_STR || kind > K_VERSION || col < -1 || col >= ncols || role < R_NONE || role > R_OUTCOME) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "bad field entry");
            return -1;
        }
        self->names[i] = PyMem_Malloc(len + 1);
        if (self->names[i] == NULL) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(self->names[i], name, len + 1);
        self->lens[i] = len;
        self->kind[i] = (unsigned char)kind;
        self->col[i] = (signed char)col;
        self->role[i] = (unsigned char)role;
        if (req)
            self->required |= (uint64_t)1 << i;
        if (kind == K_TS)
            self->ts_field = (int)i;
        self->nfields = (int)i + 1;
    }
    Py_DECREF(seq);
    /* domain, hypothesis, intervention and ts are on every line the scanner takes: required
     * strings, one ts; study and outcome are optional strings (absent: None in the key) */
    int roles = 0, ts_fields = 0;
    for (int i = 0; i < self->nfields; i++) {
        if (self->role[i] != R_NONE) {
            int needed = self->role[i] <= R_INTERV;
            if (self->kind[i] != K_STR || (needed && !((self->required >> i) & 1)) || (roles >> self->role[i]) & 1) {
                PyErr_SetString(PyExc_ValueError, "a key role on a field that is not a string (required for domain, hypothesis, intervention)");
                return -1;
            }
            roles |= 1 << self->role[i];
        }
        ts_fields += self->kind[i] == K_TS;
    }
    const int needed_roles = 1 << R_DOMAIN | 1 << R_HYP | 1 << R_INTERV;
    if ((roles & needed_roles) != needed_roles || ts_fields != 1) {
        PyErr_SetString(PyExc_ValueError, "need domain, hypothesis and intervention roles and one ts field");
        return -1;
    }
    self->ncols = ncols;
    self->version = version;
    return 0;
}

static inline int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* p past JSON whitespace (never past the line's '\n') */
static inline const unsigned char *skip_ws(const unsigned char *p) {
    while (is_ws(*p))
        p++;
    return p;
}

/* past whitespace, the character c and whitespace after it; NULL if the next token is not c */
static inline const unsigned char *after(const unsigned char *p, unsigned char c) {
    p = skip_ws(p);
    return *p == c ? skip_ws(p + 1) : NULL;
}
static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* The length of the UTF-8 sequence of a non-ASCII character at p, or 0: only what Python's strict
 * decoder takes (no overlong forms, surrogates or code points past U+10FFFF), so the str made from
 * it is every reader's. A continuation byte is never '\n', so no check reads past the line. */
static inline int utf8_char(const unsigned char *p) {
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* the JSON string at p (just after its opening quote): printable ASCII and well-formed UTF-8
 * without escapes only (study labels hold arrows: "lab/WIMP X→Y"). Returns the offset of the
 * closing quote, or NULL to give up. */
static inline const unsigned char *string_end(const unsigned char *p) {
    for (;;) {
        while (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
            p++;
        if (*p < 0x80)
            break;
        int n = utf8_char(p);
        if (n == 0)
            return NULL;
        p += n;
    }
    return *p == '"' ? p : NULL;
}

/* the fast path needs each double operation rounded once, to double (not x87's extended) */
#if FLT_EVAL_METHOD == 0
#define CLINGER 1
#else
#define CLINGER 0
#endif

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number at *pp into *out, correctly rounded (as msgspec and Python's float() round).
 * Returns 1 on success, 0 to give up (not JSON's number grammar, too long), -1 on a Python error.
 * An integer up to 2^53 and a power of ten up to 10^22 are both exact in a double, so one
 * multiplication or division rounds correctly (Clinger's fast path); others go to CPython's own
 * correctly rounded converter. */
static int number(const unsigned char **pp, double *out) {
    const unsigned char *p = *pp, *start = p;
    int neg = 0, ndig = 0, truncated = 0, integral = 1;
    uint64_t m = 0;
    long exp10 = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (is_digit(*p)) {
            if (ndig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                ndig++;
            } else {
                if (exp10 < 100000) /* bounded: a line of a billion digits must not overflow it */
                    exp10++;
                truncated = 1;
            }
            p++;
        }
    } else {
        return 0;
    }
    if (*p == '.') {
        p++;
        integral = 0;
        if (!is_digit(*p))
            return 0;
        while (is_digit(*p)) {
            if (m == 0 && *p == '0') {
                if (exp10 > -100000) /* a leading zero of the fraction: not a significant digit */
                    exp10--;
            } else if (ndig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                ndig++;
                exp10--;
            } else {
                truncated = 1;
            }
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        integral = 0;
        int eneg = 0;
        if (*p == '+' || *p == '-') {
            eneg = *p == '-';
            p++;
        }
        if (!is_digit(*p))
            return 0;
        long e = 0;
        while (is_digit(*p)) {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
    *pp = p;
    double v;
    if (!truncated && m == 0) {
        if (integral) { /* "-0" is the integer 0, as JSON readers take it: +0.0, not -0.0 */
            *out = 0.0;
            return 1;
        }
        v = 0.0;
    } else if (CLINGER && !truncated && m <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        v = exp10 < 0 ? (double)m / POW10[-exp10] : (double)m * POW10[exp10];
    } else {
        char buf[NUMBUF];
        size_t len = (size_t)(p - start);
        if (len >= NUMBUF)
            return 0;
        memcpy(buf, start, len);
        buf[len] = '\0';
        char *endp;
        v = PyOS_string_to_double(buf, &endp, NULL); /* +-HUGE_VAL on overflow, no exception */
        if (v == -1.0 && PyErr_Occurred())
            return -1;
        if (endp != buf + len)
            return 0;
        *out = v; /* the text carries its sign */
        return 1;
    }
    *out = neg ? -v : v;
    return 1;
}

/* A JSON integer for a count: digits only, no sign, fraction or exponent (msgspec's int rule,
 * which the caller's exact path applies to anything else). */
static inline int count(const unsigned char **pp, long long *out) {
    const unsigned char *p = *pp;
    if (*p == '0') {
        p++;
        if (is_digit(*p))
            return 0;
        *out = 0;
    } else {
        long long v = 0;
        int n = 0;
        while (is_digit(*p)) {
            if (++n > 18)
                return 0;
            v = v * 10 + (*p - '0');
            p++;
        }
        if (n == 0)
            return 0;
        *out = v;
    }
    if (*p == '.' || *p == 'e' || *p == 'E')
        return 0;
    *pp = p;
    return 1;
}

static const int MDAYS[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

static inline int digits2(const unsigned char *s, int *out) {
    if (!is_digit(s[0]) || !is_digit(s[1]))
        return 0;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    return 1;
}

/* Seconds since 1970 of a contract ts ("YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z", a real calendar time),
 * as datetime.fromisoformat(ts).timestamp() gives them: whole microseconds (a longer fraction is
 * cut), one division. Returns 0 to give up: another layout, no such time, or beyond 2^53
 * microseconds from 1970 (after about 2255), where the reading could differ in the last bit. */
static int ts_epoch(const unsigned char *s, Py_ssize_t w, double *out) {
    if (w < 20 || w == 21 || w > 30 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[w - 1] != 'Z' || (w > 20 && s[19] != '.'))
        return 0;
    int y1, y2, month, day, hour, minute, sec;
    if (!digits2(s, &y1) || !digits2(s + 2, &y2) || !digits2(s + 5, &month) || !digits2(s + 8, &day) ||
        !digits2(s + 11, &hour) || !digits2(s + 14, &minute) || !digits2(s + 17, &sec))
        return 0;
    long long frac = 0;
    for (Py_ssize_t k = 20; k < w - 1; k++) {
        if (!is_digit(s[k]))
            return 0;
        if (k < 26)
            frac = frac * 10 + (s[k] - '0');
    }
    for (Py_ssize_t k = w - 1; k < 26 && w > 20; k++)
        frac *= 10; /* fewer than six digits: scale to microseconds */
    long long year = y1 * 100 + y2;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > MDAYS[month] + (month == 2 && leap) ||
        hour > 23 || minute > 59 || sec > 59)
        return 0;
    /* days from the civil date (proleptic Gregorian), H. Hinnant's algorithm; y >= 0 here */
    long long yy = year - (month <= 2);
    long long era = yy / 400, yoe = yy - era * 400;
    long long doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    long long days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    long long us = (days * 86400 + hour * 3600 + minute * 60 + sec) * 1000000 + frac;
    if (us >= (1LL << 53) || us <= -(1LL << 53))
        return 0;
    *out = (double)us / 1e6;
    return 1;
}

/* a line's key: each part's offset and length in data; length -1 for an absent optional part */
typedef struct {
    Py_ssize_t off[NPARTS];
    Py_ssize_t len[NPARTS];
    uint32_t hash; /* compared before the bytes: colliding keys cost no memcmp */
} Triple;

static inline uint32_t hash_triple(const unsigned char *base, const Py_ssize_t *off, const Py_ssize_t *len) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int k = 0; k < NPARTS; k++) {
        const unsigned char *s = base + off[k];
        for (Py_ssize_t i = 0; i < len[k]; i++)
            h = (h ^ s[i]) * 16777619u;
        h = (h ^ (len[k] < 0 ? 0xfe : 0xff)) * 16777619u; /* separators no string holds */
    }
    return h;
}

static inline int same_triple(const unsigned char *base, const Triple *t, const Py_ssize_t *off,
                              const Py_ssize_t *len) {
    for (int k = 0; k < NPARTS; k++)
        if (t->len[k] != len[k] || (len[k] > 0 && memcmp(base + t->off[k], base + off[k], (size_t)len[k]) != 0))
            return 0;
    return 1;
}

/* scan(data, start, columns, kinds) -> (lines, end, triples) or None
 *
 * data: bytes-like holding whole lines, each ending in '\n'; reading starts at offset start and
 * stops at the end of data or after as many lines as kinds holds (cap), at offset end.
 * columns: writable float64 buffer of ncols * cap values, column c of line i at c * cap + i (NaN
 * where an optional field is absent; ts as seconds since 1970). kinds: writable int32 buffer,
 * each line's index into triples, a list of (domain, hypothesis, intervention, study, outcome)
 * tuples: str, with None for a study or outcome the line does not carry. */
static PyObject *Scanner_scan(Scanner *self, PyObject *args) {
    Py_buffer data, colbuf, kindbuf;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "y*nw*w*", &data, &start, &colbuf, &kindbuf))
        return NULL;
    PyObject *result = NULL;
    Triple *triples = NULL;
    int16_t *slots = NULL;
    Py_ssize_t cap = kindbuf.len / (Py_ssize_t)sizeof(int32_t);
    if (colbuf.len / (Py_ssize_t)sizeof(double) < (Py_ssize_t)self->ncols * cap || start < 0 ||
        start > data.len) {
        PyErr_SetString(PyExc_ValueError, "output buffers too small, or start out of range");
        goto done;
    }
    const char *d0 = data.buf, *d1 = d0 + data.len;
    const char *c0 = colbuf.buf, *c1 = c0 + colbuf.len, *k0 = kindbuf.buf, *k1 = k0 + kindbuf.len;
    if ((c0 < d1 && d0 < c1) || (k0 < d1 && d0 < k1)) { /* writing into data could erase a '\n' */
        PyErr_SetString(PyExc_ValueError, "output buffers overlap the input");
        goto done;
    }
    triples = PyMem_Malloc(sizeof(Triple) * MAXTRIPLES);
    slots = PyMem_Malloc(sizeof(int16_t) * HSLOTS);
    if (triples == NULL || slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memset(slots, 0xff, sizeof(int16_t) * HSLOTS);

    const unsigned char *base = data.buf;
    const unsigned char *end = base + data.len;
    double *cols = colbuf.buf;
    int32_t *kinds = kindbuf.buf;
    const int nf = self->nfields;
    int ntriples = 0, last = -1;
    Py_ssize_t line = 0;
    signed char guess[MAXF]; /* the field seen at each key position of the previous line */
    memset(guess, -1, sizeof guess);
    const unsigned char *p = base + start;
    int ok = 1;

    while (p < end && line < cap) {
        const unsigned char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) {
            ok = 0;
            break;
        }
        for (int c = 0; c < self->ncols; c++)
            cols[c * cap + line] = NAN;
        uint64_t seen = 0;
        Py_ssize_t off[NPARTS] = {0, 0, 0, 0, 0}, len[NPARTS] = {0, 0, 0, -1, -1};
        int pos = 0;
        p = after(p, '{');
        if (p == NULL) {
            ok = 0;
            break;
        }
        for (;;) { /* one "key": value per turn; an empty object lacks the required fields */
            if (*p != '"') {
                ok = 0;
                break;
            }
            const unsigned char *key = p + 1, *kend;
            int f = pos < MAXF ? guess[pos] : -1;
            /* the previous line's key at this position, compared whole (the common case) */
            if (f >= 0 && eol - key > self->lens[f] && key[self->lens[f]] == '"' &&
                memcmp(self->names[f], key, (size_t)self->lens[f]) == 0) {
                kend = key + self->lens[f];
            } else {
                kend = string_end(key);
                if (kend == NULL) {
                    ok = 0;
                    break;
                }
                Py_ssize_t klen = kend - key;
                f = -1;
                for (int i = 0; i < nf; i++)
                    if (self->lens[i] == klen && memcmp(self->names[i], key, (size_t)klen) == 0) {
                        f = i;
                        break;
                    }
            }
            if (f < 0 || (seen >> f) & 1) { /* unknown or repeated: the exact path decides */
                ok = 0;
                break;
            }
            seen |= (uint64_t)1 << f;
            if (pos < MAXF)
                guess[pos] = (signed char)f;
            pos++;
            p = after(kend + 1, ':');
            if (p == NULL) {
                ok = 0;
                break;
            }
            int kind = self->kind[f];
            if (kind == K_STR || kind == K_TS) {
                if (*p != '"') {
                    ok = 0;
                    break;
                }
                const unsigned char *s = p + 1, *send = string_end(s);
                if (send == NULL || send == s) { /* an empty string breaks the contract */
                    ok = 0;
                    break;
                }
                Py_ssize_t slen = send - s;
                int role = self->role[f];
                if (role >= R_DOMAIN && role <= R_OUTCOME) {
                    off[role - R_DOMAIN] = s - base;
                    len[role - R_DOMAIN] = slen;
                } else if (kind == K_TS) {
                    double t;
                    if (!ts_epoch(s, slen, &t)) {
                        ok = 0;
                        break;
                    }
                    if (self->col[f] >= 0)
                        cols[self->col[f] * cap + line] = t;
                }
                p = send + 1;
            } else if (kind == K_INT0 || kind == K_VERSION) {
                long long v;
                if (!count(&p, &v) || (kind == K_VERSION && v != self->version)) {
                    ok = 0;
                    break;
                }
            } else {
                double v;
                int r = number(&p, &v);
                if (r < 0)
                    goto done;
                if (r == 0 || !isfinite(v) || (kind == K_NUM0 && v < 0)) {
                    ok = 0;
                    break;
                }
                if (self->col[f] >= 0)
                    cols[self->col[f] * cap + line] = v;
            }
            p = skip_ws(p);
            if (*p == ',') {
                p = skip_ws(p + 1);
                continue;
            }
            if (*p == '}') {
                p++;
                break;
            }
            ok = 0;
            break;
        }
        if (!ok)
            break;
        p = skip_ws(p);
        if (p != eol || (seen & self->required) != self->required || self->ts_field < 0 ||
            !((seen >> self->ts_field) & 1)) {
            ok = 0;
            break;
        }
        /* the line's triple: the last one again (the common case), else the hash table */
        if (last < 0 || !same_triple(base, &triples[last], off, len)) {
            uint32_t full = hash_triple(base, off, len), h = full & (HSLOTS - 1);
            int found = -1;
            while (slots[h] >= 0) {
                if (triples[slots[h]].hash == full && same_triple(base, &triples[slots[h]], off, len)) {
                    found = slots[h];
                    break;
                }
                h = (h + 1) & (HSLOTS - 1);
            }
            if (found < 0) {
                if (ntriples == MAXTRIPLES) {
                    ok = 0;
                    break;
                }
                found = ntriples++;
                memcpy(triples[found].off, off, sizeof off);
                memcpy(triples[found].len, len, sizeof len);
                triples[found].hash = full;
                slots[h] = (int16_t)found;
            }
            last = found;
        }
        kinds[line] = last;
        line++;
        p = eol + 1;
    }
    if (!ok) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *list = PyList_New(ntriples);
    if (list == NULL)
        goto done;
    for (int t = 0; t < ntriples; t++) {
        PyObject *tup = PyTuple_New(NPARTS);
        if (tup == NULL) {
            Py_DECREF(list);
            goto done;
        }
        PyList_SET_ITEM(list, t, tup);
        for (int k = 0; k < NPARTS; k++) {
            PyObject *s = triples[t].len[k] < 0
                              ? Py_NewRef(Py_None)
                              : PyUnicode_DecodeUTF8((const char *)base + triples[t].off[k], triples[t].len[k], NULL);
            if (s == NULL) {
                Py_DECREF(list);
                goto done;
            }
            PyTuple_SET_ITEM(tup, k, s);
        }
    }
    result = Py_BuildValue("nnN", line, (Py_ssize_t)(p - base), list);
done:
    PyMem_Free(triples);
    PyMem_Free(slots);
    PyBuffer_Release(&data);
    PyBuffer_Release(&colbuf);
    PyBuffer_Release(&kindbuf);
    return result;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS,
     "scan(data, start, columns, kinds) -> (lines, end, keys), or None to leave the lines to "
     "the exact reader"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sidrce._linescan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scanner(fields, ncols, version): reads blocks of plain telemetry lines into columns",
    .tp_methods = Scanner_methods,
    .tp_init = (initproc)Scanner_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef linescan_module = {
    PyModuleDef_HEAD_INIT, "_linescan", "Plain telemetry lines into numeric columns (see _linescan.c).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__linescan(void) {
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&linescan_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
