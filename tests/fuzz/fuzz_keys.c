/*
 * libFuzzer target: the key interchange parsers.  The first byte picks the
 * parser, the rest is its text: a DH-HMAC-CHAP secret ("DHHC-1:XX:...:"),
 * a TLS PSK ("NVMeTLSkey-1:XX:...:") or a received TLS PSK identity ("NVMe1R01
 * hostnqn subnqn digest", any bytes).  A key that parses must format and
 * parse back to the same bytes; an identity that parses must hold
 * NUL-terminated fields and give a PSK with a configured key.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"
#include "auth.h"
#include "tls.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
dhchap(const char *text)
{
	struct dhchap_key k, again;
	char err[256], buf[256];
	uint8_t out[DHCHAP_HL_MAX];
	size_t outlen;

	if (dhchap_key_parse(text, &k, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			abort();	/* a refusal says why */
		return;
	}
	if (dhchap_key_format(&k, buf, sizeof(buf)) != 0 ||
	    dhchap_key_parse(buf, &again, err, sizeof(err)) != 0 ||
	    again.len != k.len || again.xform != k.xform ||
	    memcmp(again.data, k.data, k.len) != 0)
		abort();
	(void)dhchap_transform(&k, "nqn.2026-11.io.nvmfd:fuzz", out, &outlen);
}

static void
tls_key(const char *text)
{
	struct tls_key k;
	const char *why = NULL;
	uint8_t psk[TLS_PSK_MAX];

	if (tls_key_parse(text, &k, &why) != 0) {
		if (why == NULL)
			abort();
		return;
	}
	if ((k.len != 32 && k.len != 48) || tls_key_hash(&k) < 1)
		abort();
	(void)tls_retained_psk(&k, "nqn.2026-11.io.nvmfd:fuzz", TLS_KDF_COMPAT,
	    psk);
}

static void
identity(const uint8_t *id, size_t len)
{
	static const struct tls_key key = { .len = 32, .hmac = 1 };
	struct tls_identity ti;
	uint8_t psk[TLS_PSK_MAX];
	char idstr[TLS_IDENTITY_MAX + 1];
	size_t psklen;

	if (tls_identity_parse(id, len, &ti) != 0)
		return;
	if (strnlen(ti.hostnqn, sizeof(ti.hostnqn)) == sizeof(ti.hostnqn) ||
	    strnlen(ti.subnqn, sizeof(ti.subnqn)) == sizeof(ti.subnqn) ||
	    strnlen(ti.digest, sizeof(ti.digest)) == sizeof(ti.digest))
		abort();
	memcpy(idstr, id, len);
	idstr[len] = '\0';
	(void)tls_psk_for_identity(&key, &ti, idstr, TLS_KDF_RFC8446, psk,
	    &psklen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1 || size > 4096)
		return (0);
	if ((text = malloc(size)) == NULL)
		return (0);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		dhchap(text);
		break;
	case 1:
		tls_key(text);
		break;
	default:
		identity(data + 1, size - 1);
		break;
	}
	free(text);
	return (0);
}
