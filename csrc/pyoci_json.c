/* A small strict JSON reader: see pyoci_json.h. */
#include "pyoci_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200

static void skip_ws(const char **pp, const char *end)
{
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    *pp = p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;  /* json.dumps writes lowercase hex only */
}

/* A string in json.dumps(ensure_ascii=True)'s exact form: printable ASCII raw, the short
 * escapes for " \ \n \r \t \b \f, \u00xx for other control characters, \uxxxx (lowercase)
 * from 0x7f up. */
static int skip_string(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p >= end || *p != '"')
        return -1;
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *pp = p + 1;
            return 0;
        }
        if (c < 0x20 || c >= 0x7f)
            return -1;
        if (c != '\\')
            continue;
        if (++p >= end)
            return -1;
        switch (*p) {
        case '"': case '\\': case 'n': case 'r': case 't': case 'b': case 'f':
            break;
        case 'u': {
            int v = 0;
            if (end - p < 5)
                return -1;
            for (int i = 1; i <= 4; i++) {
                int h = hexval(p[i]);
                if (h < 0)
                    return -1;
                v = v * 16 + h;
            }
            if (v >= 0x20 && v < 0x7f)
                return -1;
            if (v == '\n' || v == '\r' || v == '\t' || v == '\b' || v == '\f')
                return -1;
            p += 4;
            break;
        }
        default:
            return -1;
        }
    }
    return -1;
}

static int skip_number(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    if (*p == '0')
        p++;
    else
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    if (p < end && *p == '.') {
        const char *q = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == q)
            return -1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *q = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == q)
            return -1;
    }
    *pp = p;
    return 0;
}

static int skip_literal(const char **pp, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - *pp) < n || memcmp(*pp, word, n) != 0)
        return -1;
    *pp += n;
    return 0;
}

static int skip_value_at(const char **pp, const char *end, int depth);

static int skip_container(const char **pp, const char *end, int depth, char close)
{
    const char *p = *pp + 1;
    if (depth > MAX_DEPTH)
        return -1;
    skip_ws(&p, end);
    if (p < end && *p == close) {
        *pp = p + 1;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            skip_ws(&p, end);
            if (skip_string(&p, end) < 0)
                return -1;
            skip_ws(&p, end);
            if (p >= end || *p++ != ':')
                return -1;
        }
        if (skip_value_at(&p, end, depth + 1) < 0)
            return -1;
        skip_ws(&p, end);
        if (p >= end)
            return -1;
        if (*p == close) {
            *pp = p + 1;
            return 0;
        }
        if (*p++ != ',')
            return -1;
    }
}

static int skip_value_at(const char **pp, const char *end, int depth)
{
    skip_ws(pp, end);
    if (*pp >= end)
        return -1;
    switch (**pp) {
    case '{': return skip_container(pp, end, depth, '}');
    case '[': return skip_container(pp, end, depth, ']');
    case '"': return skip_string(pp, end);
    case 't': return skip_literal(pp, end, "true");
    case 'f': return skip_literal(pp, end, "false");
    case 'n': return skip_literal(pp, end, "null");
    default: return skip_number(pp, end);
    }
}

int json_skip_value(const char **pp, const char *end)
{
    return skip_value_at(pp, end, 0);
}

int json_object(const char **pp, const char *end,
                int (*fn)(struct jtok key, struct jtok value, void *arg), void *arg)
{
    const char *p = *pp;
    skip_ws(&p, end);
    if (p >= end || *p != '{')
        return -1;
    p++;
    skip_ws(&p, end);
    if (p < end && *p == '}') {
        *pp = p + 1;
        return 0;
    }
    for (;;) {
        struct jtok key, value;
        skip_ws(&p, end);
        key.p = p;
        if (skip_string(&p, end) < 0)
            return -1;
        key.n = (size_t)(p - key.p);
        skip_ws(&p, end);
        if (p >= end || *p++ != ':')
            return -1;
        skip_ws(&p, end);
        value.p = p;
        if (skip_value_at(&p, end, 1) < 0)
            return -1;
        value.n = (size_t)(p - value.p);
        if (fn(key, value, arg) < 0)
            return -1;
        skip_ws(&p, end);
        if (p >= end)
            return -1;
        if (*p == '}') {
            *pp = p + 1;
            return 0;
        }
        if (*p++ != ',')
            return -1;
    }
}

int json_is_plain_string(struct jtok t)
{
    return t.n >= 2 && t.p[0] == '"' && t.p[t.n - 1] == '"'
        && memchr(t.p + 1, '\\', t.n - 2) == NULL && memchr(t.p + 1, '"', t.n - 2) == NULL;
}

int json_int(struct jtok t, long long *out)
{
    char buf[24];
    const char *p = t.p;
    size_t i = (t.n > 0 && p[0] == '-') ? 1 : 0;
    if (t.n == i || t.n >= sizeof(buf))
        return -1;
    if (p[i] == '0' && t.n > i + 1)
        return -1;
    if (i == 1 && t.n == 2 && p[1] == '0')
        return -1;  /* "-0": Python would print it as 0 */
    for (size_t j = i; j < t.n; j++)
        if (p[j] < '0' || p[j] > '9')
            return -1;
    memcpy(buf, p, t.n);
    buf[t.n] = '\0';
    errno = 0;
    *out = strtoll(buf, NULL, 10);
    return errno ? -1 : 0;
}

int json_is(struct jtok t, const char *s)
{
    return t.n == strlen(s) && memcmp(t.p, s, t.n) == 0;
}
