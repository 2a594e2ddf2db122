/*
 * Injected allocation failures, in a build configured with
 * --enable-fault-injection only.  The linker sends nvmfd's own calls of
 * malloc, calloc, realloc, aligned_alloc, posix_memalign, strdup and
 * vasprintf here (--wrap), and libevent's allocations come here too
 * (event_set_mem_functions).  NVMFD_FAIL_ALLOC=N[:EVERY] makes the Nth
 * allocation after the daemon is ready fail, then every EVERYth one after
 * it: a test walks N over the allocations of a connection, a Connect, a
 * control request or a reload and checks that each failure is refused
 * cleanly, the daemon lives on and nothing leaks.
 */
#include "config.h"

#ifdef NVMFD_FAULT_INJECTION

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "nvmfd.h"

void	*__real_malloc(size_t);
void	*__real_calloc(size_t, size_t);
void	*__real_realloc(void *, size_t);
void	*__real_aligned_alloc(size_t, size_t);
int	 __real_posix_memalign(void **, size_t, size_t);
char	*__real_strdup(const char *);
int	 __real_vasprintf(char **, const char *, va_list);
void	*__wrap_malloc(size_t);
void	*__wrap_calloc(size_t, size_t);
void	*__wrap_realloc(void *, size_t);
void	*__wrap_aligned_alloc(size_t, size_t);
int	 __wrap_posix_memalign(void **, size_t, size_t);
char	*__wrap_strdup(const char *);
int	 __wrap_vasprintf(char **, const char *, va_list);

#ifdef __SANITIZE_ADDRESS__
void	__sanitizer_print_stack_trace(void);
#endif

static atomic_bool armed;
static atomic_ulong count;
static unsigned long fail_at, fail_every;
static atomic_ulong failed;

/* Should this allocation fail?  Counted only once armed; the log names
 * the caller's address, for addr2line. */
#define fail_now()	fail_here(__builtin_return_address(0))

static bool
fail_here(void *caller)
{
	unsigned long n;

	if (!atomic_load_explicit(&armed, memory_order_relaxed))
		return (false);
	n = atomic_fetch_add(&count, 1) + 1;
	if (n < fail_at || (n > fail_at && (fail_every == 0 ||
	    (n - fail_at) % fail_every != 0)))
		return (false);
	atomic_fetch_add(&failed, 1);
	log_warnx("fault injection: allocation %lu fails (called from %p)",
	    n, caller);
#ifdef __SANITIZE_ADDRESS__
	__sanitizer_print_stack_trace();	/* the whole way to it */
#endif
	errno = ENOMEM;
	return (true);
}

void *
__wrap_malloc(size_t n)
{
	return (fail_now() ? NULL : __real_malloc(n));
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return (fail_now() ? NULL : __real_calloc(n, size));
}

void *
__wrap_realloc(void *p, size_t n)
{
	return (fail_now() ? NULL : __real_realloc(p, n));
}

void *
__wrap_aligned_alloc(size_t align, size_t n)
{
	return (fail_now() ? NULL : __real_aligned_alloc(align, n));
}

int
__wrap_posix_memalign(void **p, size_t align, size_t n)
{
	return (fail_now() ? ENOMEM : __real_posix_memalign(p, align, n));
}

char *
__wrap_strdup(const char *s)
{
	return (fail_now() ? NULL : __real_strdup(s));
}

int
__wrap_vasprintf(char **p, const char *fmt, va_list ap)
{
	return (fail_now() ? -1 : __real_vasprintf(p, fmt, ap));
}

static void *
ev_malloc(size_t n)
{
	return (fail_now() ? NULL : __real_malloc(n));
}

static void *
ev_realloc(void *p, size_t n)
{
	return (fail_now() ? NULL : __real_realloc(p, n));
}

/* Before libevent allocates anything: its allocations count too. */
void
fault_init(void)
{
	const char *spec = getenv("NVMFD_FAIL_ALLOC");
	char *end;

	event_set_mem_functions(ev_malloc, ev_realloc, free);
	if (spec == NULL || *spec == '\0')
		return;
	fail_at = strtoul(spec, &end, 10);
	if (*end == ':')
		fail_every = strtoul(end + 1, &end, 10);
	if (*end != '\0' || fail_at == 0) {
		fprintf(stderr, "nvmfd: NVMFD_FAIL_ALLOC=%s: want N or N:EVERY "
		    "(N from 1)\n", spec);
		exit(1);
	}
}

/* Start counting: the daemon is ready, start-up allocations are done. */
void
fault_arm(void)
{
	if (fail_at == 0)
		return;
	atomic_store(&armed, true);
	log_info("fault injection: allocation %lu after start-up fails%s",
	    fail_at, fail_every ? ", and every so many after it" : "");
}

/* At exit: how many failed, for the test to know it reached any. */
void
fault_report(void)
{
	if (fail_at != 0)
		log_info("fault injection: %lu allocations, %lu failed",
		    (unsigned long)atomic_load(&count),
		    (unsigned long)atomic_load(&failed));
}

#else
typedef int fault_injection_is_off;
#endif
