/* Checkpoints (DESIGN 7): one HDF5 file per checkpoint holding the global (unsharded) float32 tensors
 * /params/<name>, /optim/m/<name>, /optim/v/<name> for every entry of the parameter table, with root
 * attributes for the run (ckpt_meta), a format name and version, and a CRC32C per 4 MiB block of every
 * dataset (attribute `crc32c`, uint32 array). Written collectively through parallel HDF5 as
 * DIR/step_N.h5.tmp, fsynced, renamed to DIR/step_N.h5; then DIR/latest, a relative symlink, is replaced
 * by rename, and old checkpoints are pruned.
 *
 * Every function is collective over comm: all ranks call it with the same arguments and get the same
 * return value. */
#ifndef MT_CKPT_H
#define MT_CKPT_H

#include <mpi.h>
#include <stdint.h>

#include "model/model.h"
#include "train/optim.h"

#define CKPT_FORMAT "meshtrain.checkpoint"
enum { CKPT_FORMAT_VERSION = 2 }; /* 2: the root attributes carry a checksum, meta_crc32c */

typedef struct {
    long step, tokens_seen, loader_epoch, loader_cursor;
    uint64_t rng_state;
    int world_dp, world_tp, threads;
    char *config_json; /* the resolved run config; ckpt_load allocates it (ckpt_meta_free) */
    int params_only;   /* ckpt_load found no /optim group (bin/convert hf-import): moments start at zero */
    /* A LoRA adapter checkpoint names its base (attributes lora_base, lora_base_crc32c; NULL otherwise):
     * the base checkpoint's path and ckpt_params_identity of its parameters. */
    char *lora_base;
    uint32_t lora_base_crc;
} ckpt_meta;

/* Writes the trainable parameters of m (model_trainable: under LoRA the adapters only) to
 * DIR/step_<meta->step>.h5 (DIR must exist), points DIR/latest at it, then deletes the checkpoints
 * that are neither among the newest keep_last (at least 1: the new one) nor at a step that is a multiple of
 * keep_every (0: no such extra ones). opt may be NULL: moments are then saved as zeros. Any layout: every
 * rank writes the part of each tensor it owns (its tensor-parallel shard, its ZeRO-1 slice of the moments)
 * into the global dataset, and the block checksums are joined on rank 0 from every rank's pieces. */
int ckpt_save(const char *dir, const ckpt_meta *meta, model *m, optim_state *opt, int keep_last,
              int keep_every, MPI_Comm comm, mt_err *err);

/* Reads a checkpoint into m's trainable parameters (and opt unless NULL: parameters only) after checking the
 * format, version, the tensor set and every shape against m's parameter table (a different model is refused
 * naming the differing tensors and config fields) and every block checksum. meta_out (may be NULL) gets the
 * attributes. Any layout loads any checkpoint. On failure m and opt hold unspecified values. A file without
 * /optim (parameters only, from bin/convert hf-import) gives opt zero moments and sets params_only. */
int ckpt_load(const char *path, ckpt_meta *meta_out, model *m, optim_state *opt, MPI_Comm comm, mt_err *err);

/* ckpt_load of the parameters only into m's own (base) parameters, also under LoRA. */
int ckpt_load_base(const char *path, ckpt_meta *meta_out, model *m, MPI_Comm comm, mt_err *err);

/* Checks a checkpoint without a model: format, version, attributes and every dataset's checksums. A file
 * without /optim (parameters only, as bin/convert hf-import writes) is valid. */
int ckpt_verify(const char *path, MPI_Comm comm, mt_err *err);

/* The checkpoint to resume from: DIR/latest if it verifies, else the newest DIR/step_*.h5 that does, with
 * a one-line note (note[0] = 0 when latest was used) saying why and which file was taken instead. Error
 * when no checkpoint verifies. */
int ckpt_latest_valid(const char *dir, char *path_out, size_t cap, char *note, size_t note_cap, MPI_Comm comm,
                      mt_err *err);

void ckpt_meta_free(ckpt_meta *m);

/* The identity of a checkpoint's parameters, for a LoRA adapter checkpoint to name its base: the CRC32C of
 * the block checksums (attribute crc32c, little-endian uint32) of every /params dataset of table t, one
 * array after the other in byte order of the tensor names (as h5py lists them). The blocks
 * are checked against the data whenever the base is loaded, so equal identities mean equal parameters
 * (up to CRC collisions). Reads attributes only. */
int ckpt_params_identity(const char *path, const param_table *t, uint32_t *crc, mt_err *err);

#endif
