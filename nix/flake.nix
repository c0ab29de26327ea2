{
  description = "imgbuild's Nix front end: dockerTools-shaped buildImage giving an imgbuild spec and the closure's references graph; imgbuild makes the image when it is published";

  # No inputs: the core is builtins only. Pass your own nixpkgs to `lib.withNixpkgs`.
  outputs = { self }: {
    lib = {
      # The core for one system (flakes have no builtins.currentSystem): `.buildImage { ... }`.
      # Its derivations are built by /bin/sh (Nix's sandbox shell is enough for the spec; the
      # copyTo* programs need mkdir and chmod: give `path`, or use withNixpkgs).
      forSystem = system: args: import ./default.nix ({ inherit system; } // args);

      # With nixpkgs: its shell and coreutils build everything.
      #   (imgbuild-nix.lib.withNixpkgs { inherit pkgs; imgbuild = "${imgbuildPkg}/bin/imgbuild"; }).buildImage { ... }
      withNixpkgs = { pkgs, imgbuild ? "imgbuild" }:
        import ./default.nix {
          inherit imgbuild;
          system = pkgs.stdenv.hostPlatform.system;
          shell = pkgs.runtimeShell;
          path = "${pkgs.coreutils}/bin";
        };
    };
  };
}
