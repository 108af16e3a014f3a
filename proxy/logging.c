#include "proxy/logging.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static void say(const char *level, const char *fmt, va_list ap)
{
	char when[32];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s.%03ldZ %s samsa: ", when, ts.tv_nsec / 1000000,
		level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say("INFO", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say("WARN", fmt, ap);
	va_end(ap);
}

void log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say("ERROR", fmt, ap);
	va_end(ap);
}
