/*
 * TLS on NBD (NBD_OPT_STARTTLS) with pre-shared keys, as qemu-nbd, nbdkit
 * and libnbd do it through GnuTLS: a PSK file of "identity:hexkey" lines,
 * the key used as the TLS 1.3 PSK (tls-conn.c does the TLS).  Here: the
 * PSK file, and which options and exports a connection may use before
 * and after TLS (pure functions, nbd-server.c acts on their answers).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "nvmfd.h"
#include "nbd.h"

#define PSK_FILE_MAX	(NBD_PSK_MAX_KEYS * (TLS_EXT_IDENTITY_MAX + 2 + \
	    2 * TLS_EXT_PSK_MAX) + 4096)

struct nbd_psk {
	char		identity[TLS_EXT_IDENTITY_MAX + 1];
	uint8_t		key[TLS_EXT_PSK_MAX];
	size_t		len;
};

struct nbd_psks {
	int		n;
	struct nbd_psk	k[NBD_PSK_MAX_KEYS];
};

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return (ch - '0');
	ch = tolower(ch);
	return (ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1);
}

/* One "identity:hexkey" line (no newline); 0, or -1 with why. */
static int
parse_line(const char *l, size_t len, struct nbd_psk *k, const char **why)
{
	const char *colon = memchr(l, ':', len), *hex;
	size_t idlen, hexlen;

	if (colon == NULL) {
		*why = "is not identity:hexkey";
		return (-1);
	}
	idlen = colon - l;
	hex = colon + 1;
	hexlen = len - idlen - 1;
	if (idlen == 0 || idlen > TLS_EXT_IDENTITY_MAX) {
		*why = "has an empty or too long identity";
		return (-1);
	}
	for (size_t i = 0; i < idlen; i++)
		if (l[i] < 0x21 || l[i] > 0x7e) {
			*why = "has an identity that is not printable";
			return (-1);
		}
	if (hexlen % 2 != 0 || hexlen < 2 * NBD_PSK_MIN_LEN ||
	    hexlen > 2 * TLS_EXT_PSK_MAX) {
		*why = "has a key that is not 16 to 64 bytes in hex";
		return (-1);
	}
	for (size_t i = 0; i < hexlen; i += 2) {
		int hi = hexval((unsigned char)hex[i]);
		int lo = hexval((unsigned char)hex[i + 1]);

		if (hi < 0 || lo < 0) {
			*why = "has a key that is not hex";
			return (-1);
		}
		k->key[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(k->identity, l, idlen);
	k->identity[idlen] = '\0';
	k->len = hexlen / 2;
	return (0);
}

int
nbd_psk_parse(const char *text, struct nbd_psks **out, char *err,
    size_t errlen)
{
	struct nbd_psks *ps;
	const char *l = text, *why;
	int line = 0;

	*out = NULL;
	if ((ps = calloc(1, sizeof(*ps))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	for (; *l != '\0'; line++) {
		size_t len = strcspn(l, "\n");
		const char *next = l[len] ? l + len + 1 : l + len;

		while (len > 0 && (l[len - 1] == '\r' || l[len - 1] == ' ' ||
		    l[len - 1] == '\t'))
			len--;
		if (len == 0 || l[0] == '#') {
			l = next;
			continue;
		}
		if (ps->n == NBD_PSK_MAX_KEYS) {
			snprintf(err, errlen, "more than %d keys",
			    NBD_PSK_MAX_KEYS);
			goto fail;
		}
		if (parse_line(l, len, &ps->k[ps->n], &why) != 0) {
			snprintf(err, errlen, "line %d %s", line + 1, why);
			goto fail;
		}
		for (int i = 0; i < ps->n; i++)
			if (strcmp(ps->k[i].identity,
			    ps->k[ps->n].identity) == 0) {
				snprintf(err, errlen, "line %d: identity %s "
				    "again", line + 1, ps->k[i].identity);
				goto fail;
			}
		ps->n++;
		l = next;
	}
	if (ps->n == 0) {
		snprintf(err, errlen, "no keys");
		goto fail;
	}
	*out = ps;
	return (0);
fail:
	nbd_psks_free(ps);
	return (-1);
}

int
nbd_psk_load(const char *path, struct nbd_psks **out, char *err,
    size_t errlen)
{
	char *text, e[200];
	int rc;

	*out = NULL;
	if ((text = malloc(PSK_FILE_MAX)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	if ((rc = tls_read_secret_file(path, text, PSK_FILE_MAX, err,
	    errlen)) == 0 && (rc = nbd_psk_parse(text, out, e,
	    sizeof(e))) != 0)
		snprintf(err, errlen, "PSK file %.200s: %s", path, e);
	OPENSSL_cleanse(text, PSK_FILE_MAX);
	free(text);
	return (rc);
}

void
nbd_psks_free(struct nbd_psks *ps)
{
	if (ps == NULL)
		return;
	OPENSSL_cleanse(ps, sizeof(*ps));
	free(ps);
}

int
nbd_psks_count(const struct nbd_psks *ps)
{
	return (ps == NULL ? 0 : ps->n);
}

/* tls_psk_lookup_fn over a struct nbd_psks. */
int
nbd_psk_lookup(void *arg, const char *identity, uint8_t *psk, size_t *len)
{
	const struct nbd_psks *ps = arg;

	for (int i = 0; ps != NULL && i < ps->n; i++)
		if (strcmp(ps->k[i].identity, identity) == 0) {
			memcpy(psk, ps->k[i].key, ps->k[i].len);
			*len = ps->k[i].len;
			return (0);
		}
	return (-1);
}

/*
 * What to do with option opt (data len bytes) under the server's mode,
 * with or without TLS on the connection: NBD_TLS_GO on, NBD_TLS_START
 * (answer ACK, then the handshake), NBD_TLS_CLOSE (EXPORT_NAME, which
 * has no error reply), or the NBD_REP_ERR_* to answer.
 */
uint32_t
nbd_tls_option(enum port_tls mode, bool tls, uint32_t opt, uint32_t len)
{
	if (opt == NBD_OPT_STARTTLS) {
		if (mode == PORT_TLS_OFF)
			return (NBD_REP_ERR_UNSUP);
		if (tls || len != 0)
			return (NBD_REP_ERR_INVALID);
		return (NBD_TLS_START);
	}
	if (opt == NBD_OPT_ABORT || tls || mode != PORT_TLS_REQUIRED)
		return (NBD_TLS_GO);
	return (opt == NBD_OPT_EXPORT_NAME ? NBD_TLS_CLOSE :
	    NBD_REP_ERR_TLS_REQD);
}

/* May a connection see (LIST) and use an export that requires TLS or not? */
bool
nbd_tls_export_ok(bool export_requires, bool tls)
{
	return (tls || !export_requires);
}
