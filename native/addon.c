/*
 * Module entry point and small helpers shared by the addon's source files.
 * See addon.h for the layout and the error convention.
 */
#include "addon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

void addon_throw_last_error(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "usernet native: %s failed: %s", what,
           info != NULL && info->error_message != NULL ? info->error_message : "unknown N-API error");
  napi_throw_error(env, "ERR_USERNET_NATIVE", msg);
}

static bool type_error(napi_env env, const char *name, const char *expected) {
  char msg[160];
  snprintf(msg, sizeof msg, "argument '%s' must be %s", name, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return false;
}

bool arg_int32(napi_env env, napi_value v, const char *name, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) return type_error(env, name, "a number");
  return true;
}

bool arg_uint32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) return type_error(env, name, "a number");
  return true;
}

bool arg_bytes(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL) != napi_ok || type != napi_uint8_array)
    return type_error(env, name, "a Uint8Array");
  /* A zero-length view may carry a NULL pointer; callers index only within len. */
  *data = ptr;
  return true;
}

bool arg_u32array(napi_env env, napi_value v, const char *name, uint32_t **data, size_t *len) {
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL) != napi_ok || type != napi_uint32_array)
    return type_error(env, name, "a Uint32Array");
  *data = ptr;
  return true;
}

bool arg_batch(napi_env env, napi_callback_info info, const char *what, uint32_t min_slot, size_t meta_stride,
               batch_args *out) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    addon_throw_last_error(env, what);
    return false;
  }
  size_t buf_len, meta_len;
  uint32_t max_count;
  if (argc < 5) return type_error(env, "arguments", "(fd, buf, meta, maxCount, slotSize)");
  if (!arg_int32(env, argv[0], "fd", &out->fd) || !arg_bytes(env, argv[1], "buf", &out->buf, &buf_len) ||
      !arg_u32array(env, argv[2], "meta", &out->meta, &meta_len) || !arg_uint32(env, argv[3], "maxCount", &max_count) ||
      !arg_uint32(env, argv[4], "slotSize", &out->slot))
    return false;
  if (out->slot < min_slot || out->slot % 64 != 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: slotSize must be >= %u and a multiple of 64", what, min_slot);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  size_t limit = max_count;
  if (limit > buf_len / out->slot) limit = buf_len / out->slot;
  if (limit > meta_len / meta_stride) limit = meta_len / meta_stride;
  out->limit = limit;
  return true;
}

bool arg_function(napi_env env, napi_value v, const char *name) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_function) return type_error(env, name, "a function");
  return true;
}

bool arg_opt_ipv4(napi_env env, napi_value *argv, size_t argc, size_t i, const char *name, uint32_t *out) {
  if (argc <= i) return true;
  napi_valuetype t;
  if (napi_typeof(env, argv[i], &t) != napi_ok) {
    addon_throw_last_error(env, "napi_typeof");
    return false;
  }
  return t == napi_undefined || arg_uint32(env, argv[i], name, out);
}

void ipv4_sockaddr(struct sockaddr_in *sa, uint32_t addr, uint16_t port) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons(port);
  sa->sin_addr.s_addr = htonl(addr);
}

int bind_ipv4(int fd, uint32_t addr) {
  struct sockaddr_in sa;
  ipv4_sockaddr(&sa, addr, 0);
  return bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? errno : 0;
}

napi_value js_sock_local_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  memset(&sa, 0, sizeof sa);
  if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) return make_int(env, -errno);
  if (sa.sin_family != AF_INET) return make_int(env, -EAFNOSUPPORT);
  return make_int(env, ntohs(sa.sin_port));
}

napi_value make_int(napi_env env, int64_t v) {
  napi_value r = NULL;
  napi_create_int64(env, v, &r);
  return r;
}

napi_value make_undefined(napi_env env) {
  napi_value r = NULL;
  napi_get_undefined(env, &r);
  return r;
}

napi_value make_error(napi_env env, const char *code, const char *message) {
  napi_value msg, codev, err = NULL;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codev);
  napi_create_error(env, codev, msg, &err);
  return err;
}

void report_pending_exception(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  napi_value err;
  if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
}

napi_status export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_status s = napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT() {
  if (tap_register(env, exports) != napi_ok || io_register(env, exports) != napi_ok ||
      poll_register(env, exports) != napi_ok || ping_register(env, exports) != napi_ok ||
      udp_register(env, exports) != napi_ok || udp_err_register(env, exports) != napi_ok ||
      stream_register(env, exports) != napi_ok) {
    addon_throw_last_error(env, "module registration");
    return NULL;
  }
  return exports;
}
