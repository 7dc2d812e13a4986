/*
 * io.c: batched frame I/O on the non-blocking TAP fd, and a checksum helper.
 *
 * A tap fd moves exactly one frame per read() or write()/writev() and has no
 * multi-frame call (recvmmsg/sendmmsg give ENOTSOCK; docs/architecture.md, Measured techniques).
 * What we can batch is the crossing between JS and C: one readBatch call
 * drains every frame that is ready into one caller-owned buffer, and one
 * writeBatch call sends a whole output batch. Per frame this costs a syscall
 * and nothing else: no allocation, no JS object, no N-API call.
 *
 * The buffers belong to JS (Buffer.allocUnsafeSlow, created once) and are only
 * touched during the call: nothing here keeps a pointer (docs/architecture.md, Ownership).
 */
#include "addon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* A read slot must hold the largest frame the kernel can hand us: a 64 KB GSO
 * super-frame (gso_max_size 65536) behind a 10-byte virtio-net header and a
 * 14-byte Ethernet header. Slots are 64-byte aligned so that every frame's IP
 * header shares one alignment (24 with the vnet header, 14 without). */
#define MIN_SLOT_BYTES (65536 + 10 + 14)

/* Buffers of one writeBatch call resolved in a table on the stack; with
 * more (never from the stack's output queue, which passes one), the table is
 * allocated for the call. */
#define BUF_LOCAL 64

/* readBatch(fd, buf, meta, maxFrames, slotSize) -> frames read (>= 0), or -errno
 * when the very first read failed with something other than EAGAIN. Frame i
 * is at buf[meta[2i]] with length meta[2i+1], and meta[2i] == i * slotSize. */
static napi_value js_read_batch(napi_env env, napi_callback_info info) {
  batch_args a;
  if (!arg_batch(env, info, "readBatch", MIN_SLOT_BYTES, 2, &a)) return NULL;
  const int32_t fd = a.fd;
  uint8_t *const buf = a.buf;
  uint32_t *const meta = a.meta;
  const uint32_t slot = a.slot;
  const size_t limit = a.limit;

  size_t n = 0;
  while (n < limit) {
    size_t off = n * (size_t)slot;
    ssize_t r = read(fd, buf + off, slot);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      /* Report the error only when it is all we have; with frames in hand,
       * deliver them, and the next wake-up meets the error again. */
      if (n == 0) return make_int(env, -errno);
      break;
    }
    if (r == 0) break; /* not expected from a tap; never spin on it */
    /* tun returns the frame's full length even when it copied only what fit.
     * Clamp so meta never points past the slot: the stack then sees a frame
     * shorter than its IP total length and drops it as malformed. Cannot
     * happen with MIN_SLOT_BYTES; kept as a bound on what arrived. */
    if ((size_t)r > slot) r = (ssize_t)slot;
    meta[2 * n] = (uint32_t)off;
    meta[2 * n + 1] = (uint32_t)r;
    addon_bytes_in += (uint64_t)r;
    n++;
  }
  return make_int(env, (int64_t)n);
}

struct buf_ref {
  uint8_t *data;
  size_t len;
};

/* The resolved buffers of one writeBatch call, by index into `bufs`. */
struct buf_table {
  struct buf_ref *ref;
  uint64_t *resolved; /* one bit per index */
  struct buf_ref local_ref[BUF_LOCAL];
  uint64_t local_resolved;
};

/* Sets the table up for `nbufs` buffers; throws and returns false when the
 * memory for a large one is not there. */
static bool buf_table_init(napi_env env, struct buf_table *t, uint32_t nbufs) {
  t->local_resolved = 0;
  if (nbufs <= BUF_LOCAL) {
    t->ref = t->local_ref;
    t->resolved = &t->local_resolved;
    return true;
  }
  t->ref = malloc((size_t)nbufs * sizeof *t->ref);
  t->resolved = calloc(((size_t)nbufs + 63) / 64, sizeof *t->resolved);
  if (t->ref == NULL || t->resolved == NULL) {
    free(t->ref);
    free(t->resolved);
    napi_throw_error(env, "ERR_USERNET_NATIVE", "writeBatch: out of memory");
    return false;
  }
  return true;
}

static void buf_table_free(struct buf_table *t) {
  if (t->ref == t->local_ref) return;
  free(t->ref);
  free(t->resolved);
}

/* Resolves bufs[index] into the table, unless it already is; throws and
 * returns false on a bad index or type. */
static bool resolve_buf(napi_env env, napi_value bufs, uint32_t nbufs, uint32_t index, struct buf_table *t) {
  if (index >= nbufs) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "writeBatch: buffer index out of range");
    return false;
  }
  uint64_t *word = &t->resolved[index / 64];
  const uint64_t bit = 1ull << (index % 64);
  if ((*word & bit) != 0) return true;
  napi_value v;
  if (napi_get_element(env, bufs, index, &v) != napi_ok) return false;
  if (!arg_bytes(env, v, "bufs[i]", &t->ref[index].data, &t->ref[index].len)) return false;
  *word |= bit;
  return true;
}

/* Whether buffer `index` was resolved and [off, off+len) lies inside it. An
 * index that was not resolved can only come from a `meta` changed during
 * the lookups. */
static bool slice_ok(const struct buf_table *t, uint32_t nbufs, uint32_t index, uint32_t off, uint32_t len) {
  if (index >= nbufs || (t->resolved[index / 64] & (1ull << (index % 64))) == 0) return false;
  const struct buf_ref *b = &t->ref[index];
  return (size_t)off <= b->len && (size_t)len <= b->len - off;
}

/* writeBatch(fd, bufs, meta, count, out?) -> frames written.
 * Frame i is the concatenation of bufs[meta[6i]][meta[6i+1] .. +meta[6i+2]] and,
 * when meta[6i+5] > 0, bufs[meta[6i+3]][meta[6i+4] .. +meta[6i+5]] (link.ts).
 * A frame the device refuses (EIO while the link is down, EINVAL for a bad
 * vnet header, ...) is skipped, like a NIC dropping it; EAGAIN stops the batch.
 * Either way the caller counts count - written as dropped. When `out` (a
 * Float64Array of 2) is given: out[0] = bytes written, out[1] = errno of the
 * last failed frame (0 if none). Slices outside their buffer are API misuse:
 * RangeError before anything is written.
 *
 * Three passes: every buffer a frame names is looked up once, then every
 * slice is checked against the lengths found, then the frames go out. An
 * element lookup can run JavaScript (a getter on the array), which could
 * change `meta` or hand out another buffer on a second lookup; with all
 * lookups done first, nothing can change between the check and the write. */
static napi_value js_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t *meta;
  size_t meta_len;
  uint32_t count, nbufs;
  bool is_array = false;
  if (argc < 4 || !arg_int32(env, argv[0], "fd", &fd) || !arg_u32array(env, argv[2], "meta", &meta, &meta_len) ||
      !arg_uint32(env, argv[3], "count", &count))
    return NULL;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'bufs' must be an array of Uint8Array");
    return NULL;
  }
  NAPI_CALL(env, napi_get_array_length(env, argv[1], &nbufs));
  if ((size_t)count > meta_len / 6) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "writeBatch: count exceeds meta.length / 6");
    return NULL;
  }
  double *out = NULL;
  if (argc >= 5) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[4], &t));
    if (t != napi_undefined && t != napi_null) {
      napi_typedarray_type type;
      size_t out_len;
      void *ptr;
      if (napi_get_typedarray_info(env, argv[4], &type, &out_len, &ptr, NULL, NULL) != napi_ok ||
          type != napi_float64_array || out_len < 2) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'out' must be a Float64Array of length >= 2");
        return NULL;
      }
      out = ptr;
    }
  }

  struct buf_table bt;
  if (!buf_table_init(env, &bt, nbufs)) return NULL;
  for (uint32_t i = 0; i < count; i++) {
    const uint32_t *m = meta + 6 * (size_t)i;
    if (!resolve_buf(env, argv[1], nbufs, m[0], &bt) || (m[5] != 0 && !resolve_buf(env, argv[1], nbufs, m[3], &bt))) {
      buf_table_free(&bt);
      return NULL;
    }
  }
  /* Validate the whole batch first so that misuse never leaves a batch half
   * sent with no way to report how much went out. */
  for (uint32_t i = 0; i < count; i++) {
    const uint32_t *m = meta + 6 * (size_t)i;
    if (!slice_ok(&bt, nbufs, m[0], m[1], m[2]) || (m[5] != 0 && !slice_ok(&bt, nbufs, m[3], m[4], m[5]))) {
      buf_table_free(&bt);
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "writeBatch: a slice lies outside its buffer");
      return NULL;
    }
  }

  uint32_t written = 0;
  double bytes = 0;
  int last_err = 0;
  for (uint32_t i = 0; i < count; i++) {
    const uint32_t *m = meta + 6 * (size_t)i;
    struct iovec iov[2];
    int iovcnt = 1;
    iov[0].iov_base = bt.ref[m[0]].data + m[1];
    iov[0].iov_len = m[2];
    if (m[5] != 0) {
      iov[1].iov_base = bt.ref[m[3]].data + m[4];
      iov[1].iov_len = m[5];
      iovcnt = 2;
    }
    ssize_t r;
    do {
      r = writev(fd, iov, iovcnt);
    } while (r < 0 && errno == EINTR);
    if (r >= 0) {
      written++;
      bytes += (double)r;
      continue;
    }
    last_err = errno;
    /* tun's send buffer is INT_MAX by default, so this is all but
     * unreachable; if it happens the rest of the batch would fail too. */
    if (last_err == EAGAIN || last_err == EWOULDBLOCK) break;
  }
  buf_table_free(&bt);
  if (out != NULL) {
    out[0] = bytes;
    out[1] = last_err;
  }
  return make_int(env, written);
}

/* checksum(buf, off, len, initial) -> the 16-bit ones' complement sum of the
 * big-endian words of buf[off .. off+len) plus `initial` (a 16-bit or wider
 * partial sum in the same domain), folded and NOT inverted, as a number.
 *
 * RFC 1071 §2: the sum is byte-order independent up to a final swap, so we add
 * native 64-bit words with end-around carry and swap once at the end. */
static napi_value js_checksum(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *buf;
  size_t buf_len;
  uint32_t off, len, initial = 0;
  if (argc < 3 || !arg_bytes(env, argv[0], "buf", &buf, &buf_len) || !arg_uint32(env, argv[1], "off", &off) ||
      !arg_uint32(env, argv[2], "len", &len))
    return NULL;
  if (argc >= 4 && !arg_uint32(env, argv[3], "initial", &initial)) return NULL;
  if ((size_t)off > buf_len || (size_t)len > buf_len - off) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "checksum: range outside the buffer");
    return NULL;
  }
  const uint8_t *p = buf + off;
  size_t n = len;
  uint64_t sum = 0;
  while (n >= 32) {
    uint64_t w[4];
    memcpy(w, p, sizeof w);
    for (int k = 0; k < 4; k++) {
      sum += w[k];
      sum += sum < w[k]; /* end-around carry */
    }
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    sum += w;
    sum += sum < w;
    p += 8;
    n -= 8;
  }
  /* Fold to 32 bits so the tail additions below cannot overflow. */
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  while (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    /* The odd byte is the high byte of a big-endian word padded with zero. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    sum += p[0];
#else
    sum += (uint32_t)p[0] << 8;
#endif
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  sum = ((sum & 0xff) << 8) | (sum >> 8);
#endif
  sum += initial;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return make_int(env, (int64_t)sum);
}

napi_status io_register(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = export_function(env, exports, "readBatch", js_read_batch)) != napi_ok) return s;
  if ((s = export_function(env, exports, "writeBatch", js_write_batch)) != napi_ok) return s;
  return export_function(env, exports, "checksum", js_checksum);
}
