# restore.mk: restore sols with make -j, one target per sol, resumable.
#
#   make -f restore.mk -j8 FROM=s3://BUCKET/PREFIX DEST=/restore SOLS="sol0001 sol0002"
#   make -f restore.mk -j8 FROM=s3://BUCKET/PREFIX DEST=/restore LAST=10
#
# Each sol is restored by sol-restore-one (into a staging directory of its own, renamed
# when complete) and gets a stamp DEST/.<sol>.restored only when that succeeded; a rerun after a failure redoes only what is missing,
# and `make -q` reports up to date once everything is restored. One table is printed at the
# end. KEY defaults to $SOL_KEY_FILE; IDENTITY (an identity file, for archives sealed to
# recipients by sol-backup -R) defaults to $SOL_IDENTITY_FILE; give either or both. The
# scripts and tools are found beside this file or on PATH.
#
#   make -f restore.mk -j8 FROM=s3://BUCKET/PREFIX DEST=/restore LAST=10 IDENTITY=/etc/sol/site.id
#
# Cold storage (sol-backup --storage-class GLACIER or DEEP_ARCHIVE): `thaw` asks for the
# archives to be restored (TIER=Expedited|Standard|Bulk, DAYS=N, PRICES=FILE: sol-restore
# --thaw); a restore then restores the sols that are ready and reports the others WAITING,
# without a stamp: make exits 0 after the table, `make -q` exits 1 until all are restored,
# and a failed sol still makes it exit 2. Two cron lines bring back a set unattended:
#
#   0 8 * * *  make -f restore.mk thaw FROM=s3://BUCKET/PREFIX DEST=/restore LAST=90 TIER=Bulk
#   0 * * * *  make -f restore.mk -j4 FROM=s3://BUCKET/PREFIX DEST=/restore LAST=90
#
# ALSO="TARGET..." names other copies of FROM (PROFILE:s3://BUCKET/PREFIX at another vendor),
# tried in order for a sol whose download fails or whose archive does not verify.
#
#   make -f restore.mk -j8 FROM=s3://BUCKET/PREFIX ALSO=ceph:s3://BUCKET/PREFIX DEST=/restore LAST=10
#
# Sol names become make targets and shell words, so every name must match
# [A-Za-z0-9][A-Za-z0-9._-]*: LAST=N takes its names from `sol-restore --last N`, which
# reports and skips any stored key whose name does not; a SOLS word that does not is refused.

HERE := $(dir $(lastword $(MAKEFILE_LIST)))
SOL_RESTORE := $(HERE)sol-restore
SOL_RESTORE_ONE := $(HERE)sol-restore-one
KEY ?= $(SOL_KEY_FILE)
IDENTITY ?= $(SOL_IDENTITY_FILE)
# Checked in make itself (no shell): strip every allowed character, something must remain.
SAFE_CHARS := a b c d e f g h i j k l m n o p q r s t u v w x y z \
  A B C D E F G H I J K L M N O P Q R S T U V W X Y Z 0 1 2 3 4 5 6 7 8 9 . _ -
strip_safe = $(if $(2),$(call strip_safe,$(subst $(firstword $(2)),,$(1)),$(wordlist 2,999,$(2))),$(1))
not_safe = $(or $(call strip_safe,$(1),$(SAFE_CHARS)),$(filter .% _% -%,$(1)))

ifeq ($(strip $(FROM)),)
$(error FROM=s3://BUCKET/PREFIX is required)
endif
ifeq ($(strip $(DEST)),)
$(error DEST=DIR is required)
endif
ifeq ($(strip $(SOLS)),)
ifneq ($(strip $(LAST)),)
# Only names that passed sol-restore's check reach make; they are checked again below.
SOLS := $(shell '$(SOL_RESTORE)' --last '$(LAST)' -- '$(FROM)')
endif
endif
ifeq ($(strip $(SOLS)),)
$(error SOLS="sol..." or LAST=N is required (LAST found nothing under $(FROM)/))
endif
BAD := $(foreach s,$(SOLS),$(if $(call not_safe,$(s)),$(s)))
ifneq ($(strip $(BAD)),)
$(error not sol names (they must match [A-Za-z0-9][A-Za-z0-9._-]*): $(strip $(BAD)))
endif

STAMPS := $(patsubst %,$(DEST)/.%.restored,$(SOLS))
REPORT := $(DEST)/.restore-report
SELF := $(firstword $(MAKEFILE_LIST))
# A stamp whose sol is gone from DEST (deleted since) is stale: that sol is restored again.
STALE := $(foreach s,$(SOLS),$(if $(wildcard $(DEST)/$(s)),,$(wildcard $(DEST)/.$(s).restored)))
MISSING := $(filter-out $(filter-out $(STALE),$(wildcard $(STAMPS))),$(STAMPS))

# `all` has nothing to do (and `make -q` says up to date) once every stamp exists. Else a
# make of the missing stamps runs under a shell that outlives INT and TERM, so the one
# table of this run is printed at the end in every case: after success, after a failed
# sol (make stops as usual), and after an interruption (the unfinished sols INTERRUPTED).
# If this make is killed outright (SIGKILL), parent-death signals stop that shell, its
# make and every sol-restore-one in turn: nothing is restored after make is gone.
.PHONY: all restore-missing stamps thaw
all: $(if $(MISSING),restore-missing)

# Ask for the archives of SOLS in cold storage to be restored (sol-restore --thaw): each
# tier's cost and time, then each sol's state. A sol restored already needs no thaw.
# TIER, DAYS and PRICES reach the commands as environment variables, never as shell text.
TIER ?= Standard
DAYS ?= 7
export TIER DAYS PRICES
THAW := $(foreach s,$(SOLS),$(if $(filter $(DEST)/.$(s).restored,$(MISSING)),$(s)))
thaw:
ifeq ($(strip $(THAW)),)
	@echo 'restore.mk: every sol is restored already: nothing to thaw'
else
	@exec '$(SOL_RESTORE)' --thaw --tier "$$TIER" --days "$$DAYS" $(if $(PRICES),--prices "$$PRICES") -- '$(FROM)' $(foreach s,$(THAW),'$(s)')
endif

restore-missing:
	@rm -rf -- '$(REPORT)' $(foreach f,$(STALE),'$(f)') && mkdir -p -- '$(REPORT)/rows' && date -u +%FT%TZ > '$(REPORT)/started'
	@exec setpriv --pdeathsig KILL -- bash -c 'trap : INT TERM; rc=0; report=0; \
	  setpriv --pdeathsig TERM -- $(MAKE) --no-print-directory -f "$$1" FROM="$$2" DEST="$$3" SOLS="$$4" KEY="$$5" IDENTITY="$$6" ALSO="$$9" stamps || rc=$$?; \
	  "$$7" --report-of "$$8" -- "$$2" "$$3" || report=$$?; \
	  if [ "$$rc" = 0 ] && [ "$$report" != 5 ]; then rc=$$report; fi; \
	  rm -rf -- "$$8"; exit $$rc' restore.mk '$(SELF)' '$(FROM)' '$(DEST)' '$(SOLS)' '$(KEY)' '$(IDENTITY)' '$(SOL_RESTORE)' '$(REPORT)' '$(ALSO)'

stamps: $(STAMPS)

# The stamp only when sol-restore-one succeeded (status 0: restored, or in DEST already);
# its row goes to the report either way. If make itself is killed (SIGKILL, no trap), the
# parent-death signal stops the restore: nothing lands after make is gone.
# A sol WAITING for a thaw (COLD STORAGE in sol-restore(1)) lets make go on, without a stamp.
$(DEST)/.%.restored:
	@exec setpriv --pdeathsig TERM -- '$(SOL_RESTORE_ONE)' --waiting-ok $(if $(KEY),-k '$(KEY)') $(if $(IDENTITY),-i '$(IDENTITY)') $(if $(PRICES),--prices "$$PRICES") $(foreach t,$(ALSO),--also '$(t)') -- '$(FROM)' '$*' '$(DEST)' > '$(REPORT)/rows/$*'
	@if awk -F'\t' '$$3 == "WAITING" { exit 1 }' '$(REPORT)/rows/$*'; then touch -- '$@'; fi
