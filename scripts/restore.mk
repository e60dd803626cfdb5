# restore.mk: restore sols with make -j, one target per sol, resumable.
#
#   make -f restore.mk -j8 FROM=s3://BUCKET/PREFIX DEST=/restore SOLS="sol0001 sol0002"
#   make -f restore.mk -j8 FROM=s3://BUCKET/PREFIX DEST=/restore LAST=10
#
# Each sol is restored by sol-restore (into DEST/.<sol>.partial, renamed when complete) and
# gets a stamp DEST/.<sol>.restored; a rerun after a failure redoes only what is missing,
# and `make -q` reports up to date once everything is restored. KEY defaults to
# $SOL_KEY_FILE; the scripts and tools are found beside this file or on PATH.

HERE := $(dir $(lastword $(MAKEFILE_LIST)))
SOL_RESTORE := $(HERE)sol-restore
S3_LS := $(shell command -v s3-ls 2>/dev/null || echo $(HERE)../target/release/s3-ls)
KEY ?= $(SOL_KEY_FILE)

ifeq ($(strip $(FROM)),)
$(error FROM=s3://BUCKET/PREFIX is required)
endif
ifeq ($(strip $(DEST)),)
$(error DEST=DIR is required)
endif
ifeq ($(strip $(SOLS)),)
ifneq ($(strip $(LAST)),)
SOLS := $(shell $(S3_LS) --relative $(FROM)/ | cut -f1 | grep -E '^[^/]+\.tar\.gz\.sc$$' | sed 's/\.tar\.gz\.sc$$//' | sort | tail -n $(LAST))
endif
endif
ifeq ($(strip $(SOLS)),)
$(error SOLS="sol..." or LAST=N is required (LAST found nothing under $(FROM)/))
endif

STAMPS := $(patsubst %,$(DEST)/.%.restored,$(SOLS))

.PHONY: all
all: $(STAMPS)

$(DEST)/.%.restored:
	$(SOL_RESTORE) -k '$(KEY)' '$(FROM)' '$*' '$(DEST)'
	touch '$@'
