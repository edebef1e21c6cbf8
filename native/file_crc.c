/*
 * readWithCrc(path, skipLines): Promise<[Buffer, number]>, a whole file (its path a binary string, one
 * char per byte, as kmodts holds paths) read on libuv's thread pool
 * together with the CRC-32 (zlib's, the ISO-HDLC polynomial) of what follows its first `skipLines`
 * lines, or -1 when it has fewer lines. depmod's scan cache is read while the tree is walked; its
 * checksum was then computed on the main thread, where the first pass over the freshly read 5 MB cost
 * 10-20 ms on this kind of host (memory touched for the first time), against ~3 ms here beside the walk.
 * Anything that fails (open, fstat, read, memory) rejects with an Error naming the step.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <node_api.h>
#include "file_crc.h"
#include "napi_args.h"

/* slicing-by-8 tables of the reflected polynomial 0xedb88320, made once (in the first job) */
static uint32_t crc_table[8][256];
static int crc_table_ready;

static void make_tables(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int t = 1; t < 8; t++)
			crc_table[t][n] = (crc_table[t - 1][n] >> 8) ^ crc_table[0][crc_table[t - 1][n] & 0xff];
}

void file_crc32_prepare(void)
{
	if (!__atomic_load_n(&crc_table_ready, __ATOMIC_ACQUIRE)) {
		/* two threads may both make them: the same values */
		make_tables();
		__atomic_store_n(&crc_table_ready, 1, __ATOMIC_RELEASE);
	}
}

uint32_t file_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n > 0 && ((uintptr_t)p & 7) != 0) {
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
		n--;
	}
	for (; n >= 8; n -= 8, p += 8) {
		/* little-endian word loads, byte by byte so that the host's byte order does not matter */
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
	}
	while (n-- > 0)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

typedef struct {
	napi_async_work work;
	napi_deferred deferred;
	char *path;
	uint32_t skip_lines;
	uint8_t *data;
	size_t size;
	double crc;
	const char *failed; /* the step that failed, NULL for none */
	int err;
} crc_job_t;

static void crc_job_free(crc_job_t *job)
{
	free(job->path);
	free(job->data);
	free(job);
}

static void crc_job_execute(napi_env env, void *data)
{
	crc_job_t *job = data;
	struct stat st;
	size_t got = 0, at = 0;
	int fd;
	(void)env;

	fd = open(job->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		job->failed = "open";
		job->err = errno;
		return;
	}
	if (fstat(fd, &st) != 0) {
		job->failed = "fstat";
		job->err = errno;
		goto done;
	}
	/* one byte more than the size: malloc(0) may give NULL */
	job->data = (uint64_t)st.st_size < SIZE_MAX ? malloc((size_t)st.st_size + 1) : NULL;
	if (job->data == NULL) {
		job->failed = "malloc";
		job->err = ENOMEM;
		goto done;
	}
	/* a file that shrank meanwhile is read as it is (the reader's counts will not add up) */
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, job->data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			job->failed = "read";
			job->err = errno;
			goto done;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	job->size = got;
	for (uint32_t line = 0; line < job->skip_lines; line++) {
		uint8_t *nl = at < got ? memchr(job->data + at, '\n', got - at) : NULL;
		if (nl == NULL) {
			job->crc = -1;
			goto done;
		}
		at = (size_t)(nl - job->data) + 1;
	}
	file_crc32_prepare();
	job->crc = file_crc32(0, job->data + at, got - at);
done:
	close(fd);
}

static void crc_job_complete(napi_env env, napi_status status, void *data)
{
	crc_job_t *job = data;
	napi_value buf, crc, result, err, msg, code;
	char *text;
	size_t size;

	if (status != napi_ok && job->failed == NULL)
		job->failed = "work";
	if (job->failed == NULL) {
		if (buffer_of_malloced(env, (void **)&job->data, job->size, &buf) < 0)
			job->failed = "buffer";
	}
	if (job->failed == NULL && napi_create_double(env, job->crc, &crc) == napi_ok && napi_create_array_with_length(env, 2, &result) == napi_ok &&
	    napi_set_element(env, result, 0, buf) == napi_ok && napi_set_element(env, result, 1, crc) == napi_ok) {
		napi_resolve_deferred(env, job->deferred, result);
	} else {
		const char *step = job->failed == NULL ? "result" : job->failed, *why = job->err ? strerror(job->err) : "no result";
		size = strlen(step) + strlen(job->path) + strlen(why) + 32;
		text = malloc(size);
		if (text != NULL)
			snprintf(text, size, "readWithCrc: %s %s failed: %s", step, job->path, why);
		napi_create_string_latin1(env, text != NULL ? text : "readWithCrc: failed", NAPI_AUTO_LENGTH, &msg);
		free(text);
		napi_create_string_utf8(env, "EKMODTSREAD", NAPI_AUTO_LENGTH, &code);
		napi_create_error(env, code, msg, &err);
		napi_reject_deferred(env, job->deferred, err);
	}
	napi_delete_async_work(env, job->work);
	crc_job_free(job);
}

static napi_value read_with_crc_js(napi_env env, napi_callback_info info)
{
	napi_value argv[2], promise;
	size_t argc = 2, len;
	napi_valuetype type;
	crc_job_t *job;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    napi_typeof(env, argv[0], &type) != napi_ok || type != napi_string ||
	    napi_get_value_string_latin1(env, argv[0], NULL, 0, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "readWithCrc: expected a path and a line count");
		return NULL;
	}
	job = calloc(1, sizeof(*job));
	if (job == NULL || (job->path = malloc(len + 1)) == NULL) {
		free(job);
		napi_throw_error(env, NULL, "readWithCrc: out of memory");
		return NULL;
	}
	napi_get_value_string_latin1(env, argv[0], job->path, len + 1, &len);
	if (strlen(job->path) != len || napi_get_value_uint32(env, argv[1], &job->skip_lines) != napi_ok) {
		crc_job_free(job);
		napi_throw_type_error(env, NULL, "readWithCrc: expected a path without NULs and a line count");
		return NULL;
	}
	promise = queue_promised_work(env, "kmodts.readWithCrc", crc_job_execute, crc_job_complete, job, &job->deferred, &job->work);
	if (promise == NULL) {
		crc_job_free(job);
		napi_throw_error(env, NULL, "readWithCrc: could not start the work");
		return NULL;
	}
	return promise;
}

/*
 * crc32(data: Uint8Array, crc: number): number, zlib's crc32(data, crc) on the calling thread: depmod's
 * scan cache is checksummed as it is written, and node:zlib, loaded for its crc32 alone, brought ~25 of
 * Node's modules (its streams) into every run that writes the cache (docs/decisions.md, issue 14).
 */
static napi_value crc32_js(napi_env env, napi_callback_info info)
{
	napi_value argv[2], result;
	size_t argc = 2, length;
	void *data;
	uint32_t crc;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
		napi_throw_type_error(env, NULL, "crc32: expected bytes and a CRC");
		return NULL;
	}
	if (typed_array_arg(env, "crc32", argv[0], napi_uint8_array, &data, &length) < 0)
		return NULL;
	if (napi_get_value_uint32(env, argv[1], &crc) != napi_ok) {
		napi_throw_type_error(env, NULL, "crc32: expected bytes and a CRC");
		return NULL;
	}
	file_crc32_prepare();
	if (napi_create_uint32(env, length > 0 ? file_crc32(crc, data, length) : crc, &result) != napi_ok)
		return NULL;
	return result;
}

napi_status file_crc_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "readWithCrc", NULL, read_with_crc_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "crc32", NULL, crc32_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	return napi_define_properties(env, exports, 2, props);
}
