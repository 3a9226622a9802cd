/* Declarations only: lets `make size` build the library freestanding for a 32-bit target. */
#ifndef EW_SHIM_STRING_H
#define EW_SHIM_STRING_H
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
#endif
