/* The appliers: a few threads that apply every writer's durable records.
 *
 * Notes on the design
 * -------------------
 * A record is durable when the log's completion thread says so; applying
 * it to the image and answering its submitter happens on another thread,
 * so that the completion thread goes back to its next fdatasync at once.
 * That other thread used to be one per writer: a mount of 100 disks kept
 * 100 threads, nearly all idle.  Now the process has one small pool of
 * them (at most RL_APPLIER_THREADS, started as writers join, stopped when
 * the last one leaves), and each writer is a job:
 *
 *   - a writer with work is on the ready list once, in the order it got
 *     work, and at most one thread runs it at a time, so its records are
 *     applied in position order as before;
 *   - work that arrives while it runs makes it run again afterwards, at
 *     the back of the list, so a busy disk cannot starve the others;
 *   - once a second every writer runs once with `tick` set, whether or not
 *     it has records, for what a writer does while idle (reporting a stuck
 *     record, catching up after a failed append, claiming again).
 *
 * A job's owner may also run it on a thread of its own, when nothing else
 * runs it (rl_applier_try_claim): a writer whose one record in flight
 * became durable applies it on the log's completion thread, which saves
 * the hand-over to a pool thread that a synchronous writer would wait for.
 *
 * A job may block: a writer filling a gap reads the log back, and one
 * claiming again after failed appends waits for its CLAIM's append.  While
 * it does, the other threads serve the other writers; with every thread
 * blocked, the log itself is what hangs, and every disk waits for it
 * anyway.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

static struct {
	pthread_mutex_t life;		/* one join or leave at a time: the
					   last leave stops the threads before
					   a join can start new ones */
	pthread_mutex_t lock;
	pthread_cond_t work;		/* a job is ready, or stop */
	pthread_cond_t done;		/* a job stopped running */
	struct rl_applier *ready_head, *ready_tail;
	struct rl_applier *all;		/* every job joined, for the ticks */
	size_t njobs;
	pthread_t threads[RL_APPLIER_THREADS];
	size_t nthreads;
	bool stop;
	uint64_t next_tick;		/* CLOCK_MONOTONIC ns */
} pool = {
	.life = PTHREAD_MUTEX_INITIALIZER,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
};

#define TICK_NS 1000000000ull

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* The ticks are timed on CLOCK_MONOTONIC, which a static initializer
 * cannot ask for. */
static void pool_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool.work, &ca);
	pthread_condattr_destroy(&ca);
}

/* Under pool.lock. */
static void make_ready(struct rl_applier *a)
{
	if (a->running) {
		a->again = true;
		return;
	}
	if (a->queued)
		return;
	a->queued = true;
	a->next_ready = NULL;
	if (pool.ready_tail)
		pool.ready_tail->next_ready = a;
	else
		pool.ready_head = a;
	pool.ready_tail = a;
	pthread_cond_signal(&pool.work);
}

/* Under pool.lock: every job gets its tick once a second. */
static void tick_all(uint64_t now)
{
	for (struct rl_applier *a = pool.all; a; a = a->next_all) {
		a->tick_due = true;
		make_ready(a);
	}
	pool.next_tick = now + TICK_NS;
}

static void *applier_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pool.lock);
	while (!pool.stop) {
		uint64_t now = rl_clock_ns(CLOCK_MONOTONIC);

		if (now >= pool.next_tick)
			tick_all(now);
		struct rl_applier *a = pool.ready_head;

		if (!a) {
			struct timespec ts = {
				.tv_sec = (time_t)(pool.next_tick / 1000000000u),
				.tv_nsec = (long)(pool.next_tick % 1000000000u),
			};

			pthread_cond_timedwait(&pool.work, &pool.lock, &ts);
			continue;
		}
		pool.ready_head = a->next_ready;
		if (!pool.ready_head)
			pool.ready_tail = NULL;
		a->queued = false;
		a->running = true;
		a->again = false;
		bool tick = a->tick_due;

		a->tick_due = false;
		pthread_mutex_unlock(&pool.lock);
		a->run(a, tick);
		pthread_mutex_lock(&pool.lock);
		a->running = false;
		if (a->again)
			make_ready(a);
		pthread_cond_broadcast(&pool.done);
	}
	pthread_mutex_unlock(&pool.lock);
	return NULL;
}

int rl_applier_join(struct rl_applier *a, struct rl_err *err)
{
	int rc = 0;

	pthread_once(&pool_once, pool_init);
	pthread_mutex_lock(&pool.life);
	pthread_mutex_lock(&pool.lock);
	if (pool.nthreads == 0)
		pool.next_tick = rl_clock_ns(CLOCK_MONOTONIC) + TICK_NS;
	/* a thread per job up to the limit: a mount of one disk keeps one */
	if (pool.nthreads <= pool.njobs &&
	    pool.nthreads < RL_APPLIER_THREADS) {
		rc = -pthread_create(&pool.threads[pool.nthreads], NULL,
				     applier_thread, NULL);
		if (rc == 0)
			pool.nthreads++;
		else if (pool.nthreads > 0)
			rc = 0;	/* fewer threads, but some */
	}
	if (rc == 0) {
		a->queued = a->running = a->again = a->tick_due = false;
		a->prev_all = NULL;
		a->next_all = pool.all;
		if (pool.all)
			pool.all->prev_all = a;
		pool.all = a;
		pool.njobs++;
	}
	pthread_mutex_unlock(&pool.lock);
	pthread_mutex_unlock(&pool.life);
	if (rc < 0)
		return rl_err_set(err, -rc, "start an applier thread: %s",
				  strerror(-rc));
	return 0;
}

void rl_applier_wake(struct rl_applier *a)
{
	pthread_mutex_lock(&pool.lock);
	make_ready(a);
	pthread_mutex_unlock(&pool.lock);
}

bool rl_applier_try_claim(struct rl_applier *a)
{
	bool ok;

	pthread_mutex_lock(&pool.lock);
	ok = !a->running && !a->queued;
	if (ok)
		a->running = true;
	pthread_mutex_unlock(&pool.lock);
	return ok;
}

void rl_applier_release(struct rl_applier *a, bool wake)
{
	pthread_mutex_lock(&pool.lock);
	a->running = false;
	if (a->again || wake)
		make_ready(a);
	pthread_cond_broadcast(&pool.done);
	pthread_mutex_unlock(&pool.lock);
}

void rl_applier_leave(struct rl_applier *a)
{
	size_t n = 0;

	pthread_mutex_lock(&pool.life);
	pthread_mutex_lock(&pool.lock);
	/* not running, and off the ready list: nothing calls it again */
	while (a->running)
		pthread_cond_wait(&pool.done, &pool.lock);
	if (a->queued) {
		struct rl_applier **p = &pool.ready_head, *prev = NULL;

		while (*p != a) {
			prev = *p;
			p = &(*p)->next_ready;
		}
		*p = a->next_ready;
		if (pool.ready_tail == a)
			pool.ready_tail = prev;
		a->queued = false;
	}
	if (a->prev_all)
		a->prev_all->next_all = a->next_all;
	else
		pool.all = a->next_all;
	if (a->next_all)
		a->next_all->prev_all = a->prev_all;
	if (--pool.njobs == 0) {
		pool.stop = true;
		pthread_cond_broadcast(&pool.work);
		n = pool.nthreads;
	}
	pthread_mutex_unlock(&pool.lock);
	/* the threads are ours alone now: a join waits for pool.life */
	for (size_t i = 0; i < n; i++)
		pthread_join(pool.threads[i], NULL);
	if (n) {
		pthread_mutex_lock(&pool.lock);
		pool.nthreads = 0;
		pool.stop = false;
		pthread_mutex_unlock(&pool.lock);
	}
	pthread_mutex_unlock(&pool.life);
}
