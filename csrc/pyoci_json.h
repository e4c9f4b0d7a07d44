/* A small strict JSON reader for the C front door (pyoci_main.c).
 *
 * It reads what Python's json.dumps writes (state.json): every string must be in the exact
 * form json.dumps(ensure_ascii=True) gives it, so that a string token can be copied to the
 * output verbatim and come out byte for byte as Python would print it. Anything else
 * (another spelling, NaN, a raw non-ASCII byte, ...) is a failure, and a failure only ever
 * means "let the Python implementation do it".
 */
#ifndef PYOCI_JSON_H
#define PYOCI_JSON_H

#include <stddef.h>

struct jtok {             /* a value's text in the buffer */
    const char *p;
    size_t n;
};

/* Skip whitespace, then one whole value; *pp is left after it. 0 on success, -1 if not
 * strict JSON (or not canonical strings). */
int json_skip_value(const char **pp, const char *end);

/* The members of the object starting at *pp: calls fn(key, value, arg) for each, the key a
 * string token (quotes included), the value any token. fn returns 0 to go on, -1 to fail. */
int json_object(const char **pp, const char *end,
                int (*fn)(struct jtok key, struct jtok value, void *arg), void *arg);

/* The text of a string token (quotes included) is canonical and has no escape at all. */
int json_is_plain_string(struct jtok t);

/* A token that is a JSON integer (-?digits, no leading zero) fitting a long long. */
int json_int(struct jtok t, long long *out);

/* Whether a token is `s` exactly. */
int json_is(struct jtok t, const char *s);

#endif
