/*
 * The reference the AES-GCM tests hold src/gcm-vaes.c to: OpenSSL's EVP
 * sealing one message in one go.  Shared by tests/unit/test_gcm.c and
 * tests/fuzz/fuzz_gcm.c.
 */
#ifndef NVMFD_TESTS_GCM_EVP_H
#define NVMFD_TESTS_GCM_EVP_H

#include <openssl/evp.h>

/* Seal len bytes of in into out (len bytes) and tag; 0, or -1. */
static inline int
gcm_evp_seal(const uint8_t *key, size_t klen, const uint8_t *iv,
    const uint8_t *aad, size_t alen, const uint8_t *in, size_t len,
    uint8_t *out, uint8_t tag[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n, ok;

	ok = c != NULL &&
	    EVP_EncryptInit_ex(c, klen == 16 ? EVP_aes_128_gcm() :
	    EVP_aes_256_gcm(), NULL, key, iv) == 1 &&
	    (alen == 0 || EVP_EncryptUpdate(c, NULL, &n, aad, alen) == 1) &&
	    (len == 0 || EVP_EncryptUpdate(c, out, &n, in, len) == 1) &&
	    EVP_EncryptFinal_ex(c, out + len, &n) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	return (ok ? 0 : -1);
}

#endif
