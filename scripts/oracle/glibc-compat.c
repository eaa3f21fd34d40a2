/*
 * sid's libbpf.a is compiled against glibc 2.38+, whose headers redirect sscanf, fscanf and
 * strtoull to C23 variants (__isoc23_*) that bookworm's glibc 2.36 does not export. Linking that
 * archive statically here needs these three entry points; for the inputs libbpf parses (decimal
 * and hex numbers, no "0b" prefixes) the pre-C23 functions behave the same.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int __isoc23_sscanf(const char *str, const char *format, ...)
{
	va_list ap;
	va_start(ap, format);
	int n = vsscanf(str, format, ap);
	va_end(ap);
	return n;
}

int __isoc23_fscanf(FILE *stream, const char *format, ...)
{
	va_list ap;
	va_start(ap, format);
	int n = vfscanf(stream, format, ap);
	va_end(ap);
	return n;
}

unsigned long long __isoc23_strtoull(const char *str, char **end, int base)
{
	return strtoull(str, end, base);
}
