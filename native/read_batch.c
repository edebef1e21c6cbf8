/*
 * Many module files read and decoded on libuv's thread pool for one caller (src/file/batch-read.ts):
 *   readerOpen(jobs, table, done(count, extras)) -> reader
 *   readerSubmit(reader, id, path, into, rawInto, mode)   queued; nothing wakes a thread yet (path: a
 *                                                    binary string, its chars its bytes; mode: READ_IMAGE
 *                                                    (or false), READ_SCAN (or true) for depmod's scan in
 *                                                    place of the image (module_scan.c), READ_MODINFO_PARTS
 *                                                    for the parts modinfo reads of each of the paths,
 *                                                    joined by NULs, packed (modinfo_parts.c))
 *   readerKick(reader)                               the queued files handed to the pool
 *   readerClose(reader)                              no more files; those queued are still done
 * readDecodeImage (decode_napi.c) costs the JavaScript thread one async work, one wake of a pool
 * thread, one callback and one promise per file; on a busy 2-core machine that was a quarter of
 * depmod's main thread (docs/decisions.md, issue 14). Here up to `jobs` pool jobs each work through
 * the queue and wait a little for more before they end, a kick wakes them at most once per batch of
 * files, and results finished meanwhile reach JavaScript in one call: rows of numbers in `table`
 * (ROW doubles each, the addon's readerRow: id, kind, status, err, length, rawLength, and the twelve
 * words of the file's stat key as read_file took it before reading it, stat_key.h) and, at the rows
 * that need more (a failure's message, a Buffer of its own), decode_result_object's object in
 * `extras` (else null).
 * A job never waits for JavaScript without a time limit, so fs work queued behind it cannot starve.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <node_api.h>
#include "decode_napi.h"
#include "modinfo_parts.h"
#include "module_scan.h"
#include "napi_args.h"
#include "read_batch.h"

/* doubles per result in the table: the six numbers and the stat key's words */
#define ROW (6 + STAT_KEY_WORDS)
/* what a request reads (readerSubmit's mode) */
enum { READ_IMAGE = 0, READ_SCAN = 1, READ_MODINFO_PARTS = 2 };
/* how long a job with nothing to do waits for more files before it gives its pool thread back */
#define IDLE_NS (20 * 1000 * 1000L)

struct request {
	struct request *next;
	double id;
	char *path;
	/* its bytes (READ_MODINFO_PARTS: several paths joined by NULs) */
	size_t path_len;
	napi_ref into;
	napi_ref raw_into;
	/* READ_*: the image, depmod's scan (module_scan.c) in its place, or modinfo's parts */
	int mode;
	struct decode_result r;
};

struct reader {
	pthread_mutex_t lock;
	pthread_cond_t more;
	/* under lock: files not started, files done and not delivered */
	struct request *queue, *queue_end, *done, *done_end;
	size_t queued;
	int idle;          /* jobs waiting for files */
	int live;          /* jobs started and not ended */
	int notified;      /* a delivery is on its way to the JavaScript thread */
	int closed;
	int max_jobs;
	/* JavaScript thread only */
	size_t outstanding; /* submitted and not delivered */
	int holds;          /* the handle, the threadsafe function and the jobs not completed: freed at 0 */
	int released;       /* this thread's use of tsfn given back (readerClose) */
	int reffed;         /* tsfn keeps the event loop alive: files kicked and not delivered */
	napi_threadsafe_function tsfn;
	napi_ref table;
};

struct job {
	napi_async_work work;
	struct reader *rd;
};

static void free_request(napi_env env, struct request *q)
{
	if (env != NULL && q->into != NULL)
		napi_delete_reference(env, q->into);
	if (env != NULL && q->raw_into != NULL)
		napi_delete_reference(env, q->raw_into);
	if (q->r.owned)
		decode_free(q->r.image, q->r.cap);
	if (q->r.raw_owned)
		decode_free(q->r.raw, q->r.raw_cap);
	free(q->path);
	free(q);
}

static void drop_hold(napi_env env, struct reader *rd)
{
	if (--rd->holds > 0)
		return;
	for (struct request *q = rd->queue, *next; q != NULL; q = next) {
		next = q->next;
		free_request(env, q);
	}
	for (struct request *q = rd->done, *next; q != NULL; q = next) {
		next = q->next;
		free_request(env, q);
	}
	if (env != NULL && rd->table != NULL)
		napi_delete_reference(env, rd->table);
	pthread_mutex_destroy(&rd->lock);
	pthread_cond_destroy(&rd->more);
	free(rd);
}

static void deadline_after(struct timespec *t, long ns)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_nsec += ns;
	while (t->tv_nsec >= 1000000000L) {
		t->tv_nsec -= 1000000000L;
		t->tv_sec++;
	}
}

/* a pool job: the queue's files, one after another, until it stays empty for IDLE_NS (or is closed) */
static void job_execute(napi_env env, void *data)
{
	struct job *job = data;
	struct reader *rd = job->rd;
	napi_threadsafe_function tsfn = rd->tsfn;
	struct sched_param param;
	int policy = sched_getscheduler(0), batch = 0;
	/* the scanned files' bytes and images: this job's, grown to the largest file, freed when it ends */
	struct scan_buffers buffers = { NULL, 0, NULL, 0, 0, 0 };
	(void)env;

	/*
	 * SCHED_BATCH while the job runs: woken by a kick, the pool thread then waits for a free core
	 * instead of preempting the JavaScript thread that woke it (3-5x fewer preemptions of that thread,
	 * docs/decisions.md); the thread's own policy comes back before it returns to the pool
	 */
	memset(&param, 0, sizeof param);
	if (policy == SCHED_OTHER && sched_setscheduler(0, SCHED_BATCH, &param) == 0)
		batch = 1;
	pthread_mutex_lock(&rd->lock);
	for (;;) {
		struct request *q = rd->queue;
		if (q != NULL) {
			int notify;
			rd->queue = q->next;
			if (rd->queue == NULL)
				rd->queue_end = NULL;
			rd->queued--;
			pthread_mutex_unlock(&rd->lock);
			if (q->mode == READ_SCAN)
				scan_read_file(q->path, &q->r, &buffers);
			else if (q->mode == READ_MODINFO_PARTS)
				modinfo_parts_read_files(q->path, q->path_len, &q->r, &buffers);
			else
				decode_read_file(q->path, &q->r);
			pthread_mutex_lock(&rd->lock);
			q->next = NULL;
			if (rd->done_end != NULL)
				rd->done_end->next = q;
			else
				rd->done = q;
			rd->done_end = q;
			notify = !rd->notified;
			rd->notified = 1;
			if (notify) {
				pthread_mutex_unlock(&rd->lock);
				napi_call_threadsafe_function(tsfn, NULL, napi_tsfn_nonblocking);
				pthread_mutex_lock(&rd->lock);
			}
			continue;
		}
		if (rd->closed)
			break;
		{
			struct timespec until;
			int rc;
			deadline_after(&until, IDLE_NS);
			rd->idle++;
			do
				rc = pthread_cond_timedwait(&rd->more, &rd->lock, &until);
			while (rc == 0 && rd->queue == NULL && !rd->closed);
			rd->idle--;
			if (rc != 0 && rd->queue == NULL)
				break;
		}
	}
	rd->live--;
	pthread_mutex_unlock(&rd->lock);
	scan_buffers_free(&buffers);
	if (batch)
		sched_setscheduler(0, SCHED_OTHER, &param);
	/* after this the reader may be gone: nothing of it is touched */
	napi_release_threadsafe_function(tsfn, napi_tsfn_release);
}

static void job_complete(napi_env env, napi_status status, void *data)
{
	struct job *job = data;
	(void)status;
	napi_delete_async_work(env, job->work);
	drop_hold(env, job->rd);
	free(job);
}

/* starts a pool job (rd->live already counts it); -1 when it could not be */
static int start_job(napi_env env, struct reader *rd)
{
	struct job *job = calloc(1, sizeof *job);
	napi_value name;
	if (job == NULL)
		return -1;
	job->rd = rd;
	if (napi_acquire_threadsafe_function(rd->tsfn) != napi_ok) {
		free(job);
		return -1;
	}
	if (napi_create_string_utf8(env, "kmodts.reader", NAPI_AUTO_LENGTH, &name) != napi_ok ||
	    napi_create_async_work(env, NULL, name, job_execute, job_complete, job, &job->work) != napi_ok) {
		napi_release_threadsafe_function(rd->tsfn, napi_tsfn_release);
		free(job);
		return -1;
	}
	if (napi_queue_async_work(env, job->work) != napi_ok) {
		napi_delete_async_work(env, job->work);
		napi_release_threadsafe_function(rd->tsfn, napi_tsfn_release);
		free(job);
		return -1;
	}
	rd->holds++;
	return 0;
}

/* the queued files to the pool: idle jobs woken, more jobs started while files outnumber them */
static void kick(napi_env env, struct reader *rd)
{
	int start = 0;
	size_t busy;
	/* files handed over keep the process alive until they are delivered (files only queued do not) */
	if (rd->outstanding > 0 && !rd->reffed && !rd->released) {
		rd->reffed = 1;
		napi_ref_threadsafe_function(env, rd->tsfn);
	}
	pthread_mutex_lock(&rd->lock);
	/* jobs at work (or starting) take the next files anyway: idle ones are woken for the rest only */
	busy = (size_t)(rd->live - rd->idle);
	if (rd->queued > busy && rd->idle > 0) {
		if (rd->queued - busy > 1)
			pthread_cond_broadcast(&rd->more);
		else
			pthread_cond_signal(&rd->more);
	}
	while (rd->queued > (size_t)rd->live && rd->live < rd->max_jobs) {
		rd->live++;
		start++;
	}
	pthread_mutex_unlock(&rd->lock);
	for (; start > 0; start--) {
		if (start_job(env, rd) == 0)
			continue;
		pthread_mutex_lock(&rd->lock);
		rd->live--;
		pthread_mutex_unlock(&rd->lock);
	}
}

static void release_main(struct reader *rd)
{
	if (rd->released)
		return;
	rd->released = 1;
	napi_release_threadsafe_function(rd->tsfn, napi_tsfn_release);
}

/* the results finished so far, to JavaScript, a table's worth at a time */
static void deliver(napi_env env, napi_value cb, void *context, void *data)
{
	struct reader *rd = context;
	napi_value table_value, undefined, argv[2];
	napi_typedarray_type type;
	size_t rows = 0, n;
	void *table = NULL;
	(void)data;

	if (env == NULL || cb == NULL)
		return;
	if (napi_get_reference_value(env, rd->table, &table_value) != napi_ok ||
	    napi_get_typedarray_info(env, table_value, &type, &rows, &table, NULL, NULL) != napi_ok ||
	    type != napi_float64_array || table == NULL)
		rows = 0;
	rows /= ROW;
	if (rows == 0 || napi_get_undefined(env, &undefined) != napi_ok)
		return;
	for (;;) {
		struct request *list, *q, *next;
		double *t = table;
		napi_value extras = NULL;
		pthread_mutex_lock(&rd->lock);
		list = rd->done;
		for (n = 0, q = list; q != NULL && n < rows; q = q->next)
			n++;
		if (n > 0) {
			struct request *last = list;
			for (size_t k = 1; k < n; k++)
				last = last->next;
			rd->done = last->next;
			if (rd->done == NULL)
				rd->done_end = NULL;
			last->next = NULL;
		}
		if (rd->done == NULL)
			rd->notified = 0;
		pthread_mutex_unlock(&rd->lock);
		if (n == 0)
			break;
		for (q = list, n = 0; q != NULL; q = next, n++) {
			struct decode_result *r = &q->r;
			next = q->next;
			t[n * ROW] = q->id;
			t[n * ROW + 1] = r->kind;
			t[n * ROW + 2] = r->status;
			t[n * ROW + 3] = r->err;
			t[n * ROW + 4] = DECODE_HAS_IMAGE(r) ? (double)r->len : 0;
			t[n * ROW + 5] = (double)r->raw_len;
			for (int w = 0; w < STAT_KEY_WORDS; w++)
				t[n * ROW + 6 + w] = r->key[w];
			if (r->status == DECODE_FAILED || (DECODE_HAS_IMAGE(r) && r->owned) || r->raw_owned) {
				napi_value obj;
				if (extras == NULL && napi_create_array(env, &extras) != napi_ok)
					extras = NULL;
				obj = decode_result_object(env, r);
				if (extras != NULL && obj != NULL)
					napi_set_element(env, extras, (uint32_t)n, obj);
			}
			free_request(env, q);
		}
		rd->outstanding -= n;
		if (rd->outstanding == 0 && rd->reffed) {
			rd->reffed = 0;
			napi_unref_threadsafe_function(env, rd->tsfn);
		}
		if (napi_create_double(env, (double)n, &argv[0]) != napi_ok)
			break;
		if (extras == NULL && napi_get_null(env, &extras) != napi_ok)
			break;
		argv[1] = extras;
		if (napi_call_function(env, undefined, cb, 2, argv, NULL) != napi_ok) {
			/* the exception is the caller's; what is left goes with the next call */
			pthread_mutex_lock(&rd->lock);
			if (rd->done != NULL && !rd->notified) {
				rd->notified = 1;
				napi_call_threadsafe_function(rd->tsfn, NULL, napi_tsfn_nonblocking);
			}
			pthread_mutex_unlock(&rd->lock);
			break;
		}
	}
}

static void tsfn_finalize(napi_env env, void *data, void *hint)
{
	(void)hint;
	drop_hold(env, data);
}

/*
 * The handle is collected only once the threadsafe function, which holds the JavaScript side alive, is
 * gone, or at the environment's teardown, when Node runs this inside the threadsafe function's own
 * cleanup (with its lock held, on Node 24): so nothing here touches rd->tsfn. Idle jobs end.
 */
static void handle_finalize(napi_env env, void *data, void *hint)
{
	struct reader *rd = data;
	(void)hint;
	pthread_mutex_lock(&rd->lock);
	rd->closed = 1;
	pthread_cond_broadcast(&rd->more);
	pthread_mutex_unlock(&rd->lock);
	drop_hold(env, rd);
}

static struct reader *reader_arg(napi_env env, napi_value v, const char *fn)
{
	return external_arg(env, fn, v, "a reader");
}

/* readerOpen(jobs: number, table: Float64Array, done: (count, extras) => void) */
static napi_value reader_open_js(napi_env env, napi_callback_info info)
{
	size_t argc = 3, rows;
	napi_value argv[3], name, handle;
	napi_valuetype t;
	napi_typedarray_type type;
	int32_t jobs = 0;
	struct reader *rd;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
	    napi_get_value_int32(env, argv[0], &jobs) != napi_ok || jobs < 1 ||
	    napi_get_typedarray_info(env, argv[1], &type, &rows, NULL, NULL, NULL) != napi_ok ||
	    type != napi_float64_array || rows < ROW ||
	    napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function) {
		napi_throw_type_error(env, NULL, "readerOpen: unexpected argument type");
		return NULL;
	}
	rd = calloc(1, sizeof *rd);
	if (rd == NULL) {
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	{
		pthread_condattr_t attr;
		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&rd->more, &attr);
		pthread_condattr_destroy(&attr);
	}
	pthread_mutex_init(&rd->lock, NULL);
	rd->max_jobs = jobs;
	rd->holds = 1;
	if (napi_create_reference(env, argv[1], 1, &rd->table) != napi_ok ||
	    napi_create_string_utf8(env, "kmodts.reader", NAPI_AUTO_LENGTH, &name) != napi_ok ||
	    napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, rd, tsfn_finalize, rd, deliver, &rd->tsfn) != napi_ok) {
		drop_hold(env, rd);
		return NULL;
	}
	rd->holds++;
	/* only files in flight keep the process alive */
	napi_unref_threadsafe_function(env, rd->tsfn);
	if (napi_create_external(env, rd, handle_finalize, NULL, &handle) != napi_ok) {
		release_main(rd);
		drop_hold(env, rd);
		return NULL;
	}
	return handle;
}

/* readerSubmit(reader, id: number, path: binary string, into: Uint8Array | null, rawInto: Uint8Array | null, mode?: number | boolean) */
static napi_value reader_submit_js(napi_env env, napi_callback_info info)
{
	size_t argc = 6, len = 0;
	napi_value argv[6];
	bool scan = false;
	int32_t mode = READ_IMAGE;
	struct reader *rd;
	struct request *q;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) {
		napi_throw_type_error(env, NULL, "readerSubmit: missing arguments");
		return NULL;
	}
	rd = reader_arg(env, argv[0], "readerSubmit");
	if (rd == NULL)
		return NULL;
	if (rd->released) {
		napi_throw_error(env, NULL, "readerSubmit: the reader is closed");
		return NULL;
	}
	if (napi_get_value_string_latin1(env, argv[2], NULL, 0, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "readerSubmit: unexpected argument type");
		return NULL;
	}
	q = calloc(1, sizeof *q);
	if (q == NULL || (q->path = malloc(len + 1)) == NULL) {
		free(q);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	napi_get_value_string_latin1(env, argv[2], q->path, len + 1, &len);
	q->path_len = len;
	if (napi_get_value_double(env, argv[1], &q->id) != napi_ok) {
		free_request(env, q);
		napi_throw_type_error(env, NULL, "readerSubmit: unexpected argument type");
		return NULL;
	}
	if (decode_optional_bytes(env, "readerSubmit", argv[3], &q->r.image, &q->r.cap) < 0 ||
	    decode_optional_bytes(env, "readerSubmit", argv[4], &q->r.raw, &q->r.raw_cap) < 0 ||
	    (q->r.image != NULL && napi_create_reference(env, argv[3], 1, &q->into) != napi_ok) ||
	    (q->r.raw != NULL && napi_create_reference(env, argv[4], 1, &q->raw_into) != napi_ok)) {
		free_request(env, q);
		return NULL;
	}
	if (argc >= 6 && napi_get_value_bool(env, argv[5], &scan) == napi_ok)
		mode = scan ? READ_SCAN : READ_IMAGE;
	else if (argc < 6 || napi_get_value_int32(env, argv[5], &mode) != napi_ok || mode < READ_IMAGE || mode > READ_MODINFO_PARTS)
		mode = READ_IMAGE;
	q->mode = mode;
	rd->outstanding++;
	pthread_mutex_lock(&rd->lock);
	if (rd->queue_end != NULL)
		rd->queue_end->next = q;
	else
		rd->queue = q;
	rd->queue_end = q;
	rd->queued++;
	pthread_mutex_unlock(&rd->lock);
	return NULL;
}

/* the reader a call's only argument names, NULL (with a TypeError) for anything else, or once closed */
static struct reader *open_reader_of_call(napi_env env, napi_callback_info info, const char *fn)
{
	size_t argc = 1;
	napi_value arg;
	struct reader *rd;
	if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok || argc < 1) {
		napi_throw_type_error(env, NULL, "reader: missing arguments");
		return NULL;
	}
	rd = reader_arg(env, arg, fn);
	return rd != NULL && !rd->released ? rd : NULL;
}

/* readerKick(reader) */
static napi_value reader_kick_js(napi_env env, napi_callback_info info)
{
	struct reader *rd = open_reader_of_call(env, info, "readerKick");
	if (rd != NULL)
		kick(env, rd);
	return NULL;
}

/* readerClose(reader): the files submitted are still read and delivered; the jobs end when they are */
static napi_value reader_close_js(napi_env env, napi_callback_info info)
{
	struct reader *rd = open_reader_of_call(env, info, "readerClose");
	if (rd == NULL)
		return NULL;
	kick(env, rd);
	pthread_mutex_lock(&rd->lock);
	rd->closed = 1;
	pthread_cond_broadcast(&rd->more);
	pthread_mutex_unlock(&rd->lock);
	release_main(rd);
	return NULL;
}

napi_status read_batch_register(napi_env env, napi_value exports)
{
	const napi_property_descriptor props[] = {
		{ "readerOpen", NULL, reader_open_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "readerSubmit", NULL, reader_submit_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "readerKick", NULL, reader_kick_js, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "readerClose", NULL, reader_close_js, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	napi_status s = napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
	/* the table's doubles per result (an addon without it has six: no stat keys) */
	if (s == napi_ok)
		s = define_int32(env, exports, "readerRow", ROW);
	/* the modes readerSubmit takes beyond the image (an addon without it: a boolean `scan`) */
	return s != napi_ok ? s : define_int32(env, exports, "readerModes", READ_MODINFO_PARTS + 1);
}
