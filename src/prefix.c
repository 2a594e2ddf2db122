/*
 * Address prefixes ("10.1.0.0/16", "fd00::/8", or one address): where an
 * allowed host may connect from.  An IPv4 peer reached through an IPv6
 * listener ("::" accepts both) arrives as ::ffff:a.b.c.d and is matched as
 * the IPv4 address it is.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

/* "ADDR" or "ADDR/BITS", numeric; 0 or -1. */
int
prefix_parse(const char *s, struct addr_prefix *p)
{
	char addr[INET6_ADDRSTRLEN + 1], *end;
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long bits;
	int max;

	if (alen == 0 || alen >= sizeof(addr))
		return (-1);
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(p, 0, sizeof(*p));
	if (inet_pton(AF_INET, addr, p->addr) == 1) {
		p->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, p->addr) == 1) {
		p->family = AF_INET6;
		max = 128;
	} else
		return (-1);
	bits = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return (-1);
		bits = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || bits > (unsigned long)max)
			return (-1);
	}
	p->bits = (uint8_t)bits;
	/* Host bits set under the mask make the prefix ambiguous. */
	for (int i = p->bits; i < max; i++)
		if (p->addr[i / 8] & (0x80 >> (i % 8)))
			return (-1);
	return (0);
}

void
prefix_format(const struct addr_prefix *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->bits);
}

static bool
prefix_has(const struct addr_prefix *p, int family, const uint8_t *a)
{
	if (p->family != family)
		return (false);
	for (int i = 0; i < p->bits; i++)
		if ((a[i / 8] ^ p->addr[i / 8]) & (0x80 >> (i % 8)))
			return (false);
	return (true);
}

/* Whether sa is inside one of the n prefixes. */
bool
prefix_match(const struct addr_prefix *p, size_t n, const struct sockaddr *sa)
{
	const uint8_t *a;
	int family;

	if (sa == NULL)
		return (false);
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		family = AF_INET6;
		if (IN6_IS_ADDR_V4MAPPED(
		    &((const struct sockaddr_in6 *)sa)->sin6_addr)) {
			family = AF_INET;
			a += 12;
		}
	} else
		return (false);
	for (size_t i = 0; i < n; i++)
		if (prefix_has(&p[i], family, a))
			return (true);
	return (false);
}

int
prefix_list_parse(const char *s, struct addr_prefix **out, size_t *nout)
{
	struct addr_prefix *p = NULL;
	char item[INET6_ADDRSTRLEN + 8];
	size_t n = 0, len;

	*out = NULL;
	*nout = 0;
	if (*s == '\0' || strcmp(s, "any") == 0)
		return (0);
	for (;;) {
		struct addr_prefix *np;

		len = strcspn(s, ",");
		if (len == 0 || len >= sizeof(item) ||
		    (np = reallocarray(p, n + 1, sizeof(*p))) == NULL)
			goto bad;
		p = np;
		memcpy(item, s, len);
		item[len] = '\0';
		if (prefix_parse(item, &p[n++]) != 0)
			goto bad;
		if (s[len] == '\0')
			break;
		s += len + 1;
	}
	*out = p;
	*nout = n;
	return (0);
bad:
	free(p);
	return (-1);
}
