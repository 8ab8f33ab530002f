/* npy.h - reading and writing NumPy .npy files (format versions 1.0, 2.0, 3.0).
 *
 * Owns: the .npy header dialect and the mapping between NumPy descrs and
 * onyx_dtype. Does not own: choosing a codec by file extension (tensorfile.h).
 *
 * Supported descrs on read: bool (|b1), int8/16/32/64, uint8/16/32/64,
 * float16/32/64, complex64/128, in any byte order ('<', '>', '|', '=';
 * big-endian data is byte-swapped), and text arrays: '<U' (UCS-4) and '|S'
 * (bytes), which become STRING tensors of UTF-8 text with NumPy's trailing-NUL
 * stripping. Rejected with a clear error: fortran_order True, structured
 * descrs, object ('|O') arrays (they are pickles), datetimes, void.
 *
 * On write, types NumPy cannot name are widened so the file stays loadable
 * with a plain np.load: bfloat16, float8 and float4 become float32; int4 and
 * uint4 (stored unpacked) become int8 and uint8; STRING becomes '<U<n>' with
 * n the longest element in code points.
 */
#ifndef ONYX_NPY_H
#define ONYX_NPY_H

#include "core/tensor.h"
#include "onyx.h"

#include <stddef.h>
#include <stdint.h>

/* Decodes a whole .npy image held in memory into a new heap tensor. On
 * success *out owns its data (release with onyx_tensor_release); on failure
 * *out is left empty and `err` says what was wrong (header, descr, shape,
 * truncated data). Every length and size is bounds- and overflow-checked, so
 * hostile bytes produce an error, never a crash. */
onyx_status onyx_npy_decode(const uint8_t *data, size_t size, onyx_tensor *out, onyx_error *err);

/* Maps `path` and decodes it as above; error messages start with the path. */
onyx_status onyx_npy_load(const char *path, onyx_tensor *out, onyx_error *err);

/* Encodes `t` as a .npy image (format 1.0, or 2.0 if the header needs it)
 * into a malloc'ed buffer that the caller frees. */
onyx_status onyx_npy_encode(const onyx_tensor_view *t, uint8_t **out, size_t *size,
                            onyx_error *err);

/* Writes `t` to `path` as .npy (created or truncated). */
onyx_status onyx_npy_save(const char *path, const onyx_tensor_view *t, onyx_error *err);

#endif /* ONYX_NPY_H */
