/* Helpers shared by the test suites. */
#include <stdio.h>

#include "tt.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long tt_hex(const char *text, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *text; text++) {
        int v;
        if (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t') continue;
        v = hexval(*text);
        if (v < 0) return -1;
        if (hi < 0) {
            hi = v;
        } else {
            if (n >= cap) return -1;
            out[n++] = (uint8_t)(hi * 16 + v);
            hi = -1;
        }
    }
    return hi < 0 ? (long)n : -1;
}

long tt_read_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f) return -1;
    n = fread(out, 1, cap - 1, f);
    if (!feof(f)) n = cap; /* too large */
    fclose(f);
    if (n >= cap) return -1;
    out[n] = 0;
    return (long)n;
}

uint32_t tt_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}
