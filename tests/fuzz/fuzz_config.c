/*
 * libFuzzer target: the YAML configuration loader.  Any input must give a
 * configuration or an error naming file:line:column, never a crash or leak.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, err[1024];
	struct config *cf;

	if ((text = malloc(size + 1)) == NULL)
		return (0);
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	cf = config_load_string("fuzz.yaml", text, err, sizeof(err));
	if (cf == NULL && strncmp(err, "fuzz.yaml", 9) != 0)
		abort();	/* every error names the file */
	config_free(cf);
	free(text);
	return (0);
}
