# The two commands a new user needs: `make demo` (the whole pipeline on the local stack) and
# `make test` (every test). Both install what they need first. `make soak` (not in CI): the chaos
# test with ≥ 100 faults against a broker of its own (scripts/soak.sh).
.PHONY: install demo test typecheck lint unit soak wasm

install:
	bash scripts/install.sh

demo: install
	node_modules/.bin/node dev/demo.ts

test:
	bash scripts/test.sh

typecheck:
	node_modules/.bin/tsc --noEmit -p .

lint:
	node_modules/.bin/eslint --max-warnings=0 .
	node_modules/.bin/prettier --check .

unit:
	node_modules/.bin/node --test 'test/unit/**/*.test.ts'

soak:
	bash scripts/soak.sh

# Rebuilds the committed WebAssembly modules from their AssemblyScript sources (a unit test checks them).
wasm:
	bash scripts/build-wasm.sh
