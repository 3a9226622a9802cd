/* A tiny test harness: CHECK counts, a failing CHECK prints where and goes on. */
#ifndef EW_TT_H
#define EW_TT_H

#include <stdio.h>

extern int tt_checks;
extern int tt_failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        tt_checks++;                                                                       \
        if (!(cond)) {                                                                     \
            tt_failed++;                                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                                                  \
    } while (0)

/* Registers and runs one test function (see tests/main.c). */
void tt_run(const char *name, void (*fn)(void));
#define RUN(fn) tt_run(#fn, fn)

/* Each test file exposes one suite function that RUNs its tests. */
void suite_link(void);
void suite_pb(void);
void suite_device(void);
void suite_fuzz(void);
void suite_golden(const char *dir);

/* Shared helpers (tests/util.c). */
#include <stddef.h>
#include <stdint.h>
/* Parses hex text (whitespace ignored) into out; returns the byte count or -1. */
long tt_hex(const char *text, uint8_t *out, size_t cap);
/* Reads a whole file into out (NUL-terminated); returns its length or -1. */
long tt_read_file(const char *path, char *out, size_t cap);
/* A deterministic PRNG (xorshift32). */
uint32_t tt_rand(uint32_t *state);

#endif
