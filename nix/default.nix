# imgbuild's Nix front end. Builtins only: no nixpkgs is needed (nixpkgs conveniences are in
# flake.nix). `buildImage` takes dockerTools-shaped arguments and returns a derivation whose
# output is an imgbuild spec (JSON) and, as its `graph` output, the references graph of the
# closure (exportReferencesGraph); imgbuild makes the image from them when you publish it, so the
# image's bytes are never in the Nix store (nix2container's idea). See docs/from-dockertools.md
# and docs/from-nix2container.md.
#
#   let ib = import ./nix { imgbuild = "${imgbuildPackage}/bin/imgbuild"; };
#   in ib.buildImage { name = "hello"; contents = [ hello ]; config.Cmd = [ "/bin/hello" ]; }
#
#   nix-build -A image                        # result: the spec, result-graph: the graph
#   $(nix-build -A image.copyToOci) ./out.oci # an OCI layout
#   $(nix-build -A image.copyToRegistry) ghcr.io/acme/hello:1.0
{
  # How to run imgbuild: a command (a string, looked up on PATH when the program runs) or a
  # package with bin/imgbuild.
  imgbuild ? "imgbuild",
  # The builder of every derivation here. The spec derivation uses only the shell's builtins
  # (printf, read), so Nix's sandbox shell is enough.
  shell ? "/bin/sh",
  # PATH for building the programs (copyToOci, copyToRegistry): it needs mkdir and chmod. The
  # default suits Nix without a sandbox; flake.nix passes nixpkgs' coreutils.
  path ? "/usr/bin:/bin",
  system ? builtins.currentSystem,
}:
let
  inherit (builtins) baseNameOf concatStringsSep filter genList isString length removeAttrs toJSON attrNames elemAt;

  command = if isString imgbuild then imgbuild else "${imgbuild}/bin/imgbuild";

  # Nix SIGKILLs a builder whose log pipe reaches EOF before it exits; ending on the builtin
  # `true` keeps the shell alive until its last command is done.
  shDerivation = attrs: script: derivation ({ inherit system; builder = shell; args = [ "-c" "${script}\ntrue" ]; } // attrs);

  # An executable `bin/<name>` running `body` (sh syntax; "$@" are its arguments).
  program = name: body:
    (shDerivation { inherit name; PATH = path; text = "#!${shell}\n${body}\n"; } ''
      mkdir -p "$out/bin" && printf '%s' "$text" > "$out/bin/${name}" && chmod 0555 "$out/bin/${name}"
    '') // { meta.mainProgram = name; };

  toList = x: if x == null then [ ] else if builtins.isList x then x else [ x ];
  nonNull = attrs: removeAttrs attrs (filter (k: attrs.${k} == null) (attrNames attrs));
in
rec {
  /*
    dockerTools-shaped arguments; the names and meanings are dockerTools' (buildLayeredImage)
    where both have the argument:
      name, tag, config, created, mtime, maxLayers, architecture, includeStorePaths,
      includeNixDB, uid, gid, uname, gname
      fromImage     an image tarball (dockerTools.pullImage, a docker-archive) or any image
                    reference imgbuild reads ("docker://alpine:3.20", "oci:/path/to/layout")
      contents      linked into / (buildEnv-style symlinks) and their closure put in store layers;
                    `copyToRoot` is the same (nix2container's name)
      storePaths    closure put in store layers, nothing linked (imgbuild's own `contents`)
      excludePaths  dockerTools' name; `exclude` (imgbuild), `ignore` (nix2container) too
      perms, nixUid, nixGid, pathsToLink, layering, files, directories, symlinks, users, groups,
      compressor, os, variant: imgbuild's spec fields (see the JSON Schema of the spec)
      passthru, meta  set on the result, as dockerTools does
      extraSpec     any other spec fields, merged last
  */
  buildImage =
    {
      name,
      tag ? null,
      contents ? [ ],
      copyToRoot ? [ ],
      storePaths ? [ ],
      config ? { },
      excludePaths ? [ ],
      exclude ? [ ],
      ignore ? null,
      extraSpec ? { },
      ...
    }@args:
    let
      linked = toList contents ++ toList copyToRoot;
      closureRoots = linked ++ toList storePaths;
      passed = removeAttrs args [ "name" "tag" "contents" "copyToRoot" "storePaths" "config" "excludePaths" "exclude" "ignore" "extraSpec" "fromImage" "passthru" "meta" ];
      # dockerTools' fromImage is an image tarball (a derivation or a path); a string is an image reference.
      fromImage = if !(args ? fromImage) || args.fromImage == null then null
        else if isString args.fromImage then args.fromImage
        else "docker-archive:${args.fromImage}";
      excluded = toList excludePaths ++ toList exclude ++ toList ignore;
      # One exportReferencesGraph file per root (Nix 2.8 takes one path per file); the builder
      # concatenates them (a path listed twice is read once).
      graphNames = genList (i: "graph-${toString i}") (length closureRoots);
      exportReferencesGraph = builtins.concatLists (genList (i: [ (elemAt graphNames i) (elemAt closureRoots i) ]) (length closureRoots));
      spec = nonNull (passed // {
        inherit name tag fromImage;
        config = if config == { } then null else config;
        contents = if storePaths == [ ] then null else map toString (toList storePaths);
        copyToRoot = if linked == [ ] then null else map toString linked;
        exclude = if excluded == [ ] then null else map toString excluded;
        # The closure comes from the graph output; the files are in the store itself.
        store = if closureRoots == [ ] then null else { kind = "closure-file"; closureFile = builtins.placeholder "graph"; storeDir = builtins.storeDir; };
      }) // extraSpec;
      specDrv = shDerivation
        {
          name = "imgbuild-${baseNameOf name}.json";
          outputs = [ "out" "graph" ];
          inherit exportReferencesGraph;
          imgbuildSpec = toJSON spec;
        }
        ''
          printf '%s\n' "$imgbuildSpec" > "$out"
          : > "$graph"
          for f in ${concatStringsSep " " graphNames}; do
            while IFS= read -r line; do printf '%s\n' "$line"; done < "$f" >> "$graph"
          done
        '';
    in
    specDrv // (args.passthru or { }) // {
      meta = args.meta or { };
      # The spec as a Nix value (what the output holds, as JSON).
      imgbuildSpec = spec;
      # `copy-to-oci <dir> [imgbuild build flags]`: the image as an OCI layout.
      copyToOci = program "copy-to-oci" ''
        if [ $# -lt 1 ]; then echo "usage: copy-to-oci <dir> [imgbuild build flags]" >&2; exit 2; fi
        dir=$1; shift
        exec ${command} build ${specDrv} --output "$dir" "$@"'';
      # `copy-to-registry <reference> [imgbuild build flags]`: the image pushed (layers the registry has are not sent).
      copyToRegistry = program "copy-to-registry" ''
        if [ $# -lt 1 ]; then echo "usage: copy-to-registry <reference> [imgbuild build flags]" >&2; exit 2; fi
        ref=$1; shift
        exec ${command} build ${specDrv} --push "$ref" "$@"'';
    };
}
