/* tensorfile.h - loading and saving one tensor or value as a file, the codec
 * chosen by extension: .npy (NumPy, tensors only) or .pb (ONNX TensorProto,
 * SequenceProto, MapProto, OptionalProto). Used by `onyx run` and the
 * conformance runner. Does not own the codecs themselves (npy.c, src/onnx/).
 */
#ifndef ONYX_TENSORFILE_H
#define ONYX_TENSORFILE_H

#include "onyx.h"

typedef enum onyx_tensorfile_format {
    ONYX_TENSORFILE_UNKNOWN = 0,
    ONYX_TENSORFILE_NPY,
    ONYX_TENSORFILE_PB,
    ONYX_TENSORFILE_FORMAT_COUNT
} onyx_tensorfile_format;

/* The format named by the extension of `path` (case-insensitive), or UNKNOWN. */
onyx_tensorfile_format onyx_tensorfile_format_of(const char *path);

/* Loads the value stored in `path` into a new heap value (*out; free with
 * onyx_value_free). A .npy file holds a tensor. What a .pb file holds follows
 * `hint`, the graph input it will feed (NULL means a tensor):
 *   kind TENSOR   -> TensorProto
 *   kind SEQUENCE -> SequenceProto (hint->dtype types an empty sequence)
 *   kind MAP      -> MapProto (values that are all one-element tensors of one
 *                    type become a 1-D tensor, as the runtime stores maps)
 *   kind NONE     -> OptionalProto (the input is optional; an empty one loads
 *                    as a NONE value)
 * External data referenced by a .pb tensor is resolved relative to the .pb
 * file's directory. Errors name the path and the cause. */
onyx_status onyx_tensorfile_load(const char *path, const onyx_io_info *hint, onyx_value **out,
                                 onyx_error *err);

/* Writes `v` to `path` (created or truncated) in format `fmt`. NPY takes
 * tensors only (ONYX_ERR_INVALID_ARGUMENT otherwise). PB writes a TensorProto
 * for a plain tensor, and a SequenceProto / MapProto / OptionalProto for the
 * other kinds and for values of a declared-optional output. `name` fills the
 * proto's name field (may be NULL). */
onyx_status onyx_tensorfile_save(const char *path, onyx_tensorfile_format fmt, const char *name,
                                 const onyx_value *v, onyx_error *err);

#endif /* ONYX_TENSORFILE_H */
