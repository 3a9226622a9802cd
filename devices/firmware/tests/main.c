/* Runs every C test suite; prints a summary line the vitest wrapper checks. */
#include <stdio.h>

#include "tt.h"

int tt_checks = 0;
int tt_failed = 0;
static int tests_run = 0;
static int tests_failed = 0;

void tt_run(const char *name, void (*fn)(void))
{
    int before = tt_failed;
    fn();
    tests_run++;
    if (tt_failed != before) {
        tests_failed++;
        fprintf(stderr, "FAIL %s\n", name);
    } else {
        printf("ok   %s\n", name);
    }
}

int main(int argc, char **argv)
{
    suite_link();
    suite_pb();
    suite_device();
    suite_fuzz();
    suite_golden(argc > 1 ? argv[1] : NULL);
    printf("ew-tests: %d tests, %d checks, %d failed\n", tests_run, tt_checks, tests_failed);
    return tests_failed == 0 && tt_failed == 0 ? 0 : 1;
}
