#!/usr/bin/env cwl-runner
# Exported by descpipe from ../pipelines/des-sv-mock.yaml: edit that file and export again rather than editing this one.
cwlVersion: v1.2
$namespaces:
  edam: http://edamontology.org/
$schemas:
  - https://edamontology.org/EDAM_1.25.owl
class: Workflow
id: main
label: des-sv
doc: "The des-sv pipeline, exported by descpipe from des-sv-mock.yaml."
inputs:
  mock_catalogs.code:
    type: Directory
  mock_catalogs.binning:
    type: File
    format: edam:format_3750
  mock_catalogs.n_galaxies:
    type: int
    default: 100000
  mock_catalogs.seed:
    type: int
    default: 1
  mock_catalogs.area_deg2:
    type: float
    default: 140.0
  mock_catalogs.nz:
    type: int
    default: 100
  mock_catalogs.zmax:
    type: float
    default: 2.0
  mock_catalogs.sigma_z:
    type: float
    default: 0.05
  mock_catalogs.sigma_e:
    type: float
    default: 0.25
  mock_catalogs.shear_amplitude:
    type: float
    default: 0.1
  mock_catalogs.shear_scale_arcmin:
    type: float
    default: 3.0
  tomography.code:
    type: Directory
  tomography.config:
    type: File
    format: edam:format_3750
  pz_stack.code:
    type: Directory
  pz_stack.chunk_rows:
    type: int
    default: 100000
  treecorr.code:
    type: Directory
  treecorr.config:
    type: File
    format: edam:format_3750
  sacc_file.code:
    type: Directory
outputs:
  shear-catalog:
    type: File
    outputSource: mock_catalogs/shear-catalog
  photoz-catalog:
    type: File
    outputSource: mock_catalogs/photoz-catalog
  mock-truth:
    type: File
    outputSource: mock_catalogs/mock-truth
  mock_catalogs.stdout:
    type: File
    outputSource: mock_catalogs/stdout
  mock_catalogs.stderr:
    type: File
    outputSource: mock_catalogs/stderr
  tomographic-catalog:
    type: File
    outputSource: tomography/tomographic-catalog
  tomography.stdout:
    type: File
    outputSource: tomography/stdout
  tomography.stderr:
    type: File
    outputSource: tomography/stderr
  n_of_z:
    type: File
    outputSource: pz_stack/n_of_z
  pz_stack.stdout:
    type: File
    outputSource: pz_stack/stdout
  pz_stack.stderr:
    type: File
    outputSource: pz_stack/stderr
  correlation-functions:
    type: File
    outputSource: treecorr/correlation-functions
  treecorr.stdout:
    type: File
    outputSource: treecorr/stdout
  treecorr.stderr:
    type: File
    outputSource: treecorr/stderr
  sacc-data:
    type: File
    outputSource: sacc_file/sacc-data
  sacc_file.stdout:
    type: File
    outputSource: sacc_file/stdout
  sacc_file.stderr:
    type: File
    outputSource: sacc_file/stderr
steps:
  mock_catalogs:
    in:
      code: mock_catalogs.code
      binning: mock_catalogs.binning
      n_galaxies: mock_catalogs.n_galaxies
      seed: mock_catalogs.seed
      area_deg2: mock_catalogs.area_deg2
      nz: mock_catalogs.nz
      zmax: mock_catalogs.zmax
      sigma_z: mock_catalogs.sigma_z
      sigma_e: mock_catalogs.sigma_e
      shear_amplitude: mock_catalogs.shear_amplitude
      shear_scale_arcmin: mock_catalogs.shear_scale_arcmin
    out:
      - shear-catalog
      - photoz-catalog
      - mock-truth
      - stdout
      - stderr
    run:
      class: CommandLineTool
      id: mock_catalogs
      label: mock_catalogs
      doc: |
        Write synthetic shear and photo-z catalogs carrying a signal known in closed form, and that truth.

        Galaxies are uniform in area on a `area_deg2` patch near RA=70, DEC=-50 deg (DES SV SPT-E is
        about 140 deg^2), with true redshifts from n(z) ∝ z^2 exp(-(z/0.5)^1.5) on 0 < z < zmax.
        Photo-z: Z_MEAN is the true z plus a Gaussian error sigma_z (1+z); PDF_0..PDF_<nz-1> is a
        Gaussian of width sigma_z (1+Z_MEAN) around Z_MEAN on `nz` bins from 0 to zmax (header NZ,
        ZMIN, ZMAX), summing to 1. Shapes: E_1 + i E_2 = A(z) gamma + shape noise (sigma_e per
        component), where gamma is a Gaussian random E-mode shear field of rms `shear_amplitude` per
        component whose xi+ and xi- are closed-form (scale `shear_scale_arcmin`; see mocks.py), and
        A(z) = 1 - 0.2/z a single-lens-plane lensing efficiency. Weights W are 1. Signs follow
        TreeCorr on the sky: g1 along east-west, g2 along the north-west diagonal.
        The `binning` config is the tomography stage's (bin_column Z_MEAN, zmin, zmax, nbin): the truth
        is computed for that binning. Outputs: `shear-catalog` (RA, DEC in degrees, E_1, E_2, W) and
        `photoz-catalog` (Z_MEAN, Z_TRUE, PDFs), FITS tables in HDU 1 with the same rows in the same
        order; `mock-truth`, YAML: the parameters, each bin's expected edges, efficiency, true and
        stacked n(z), and xi+/xi- of the field on a fine angular grid with each bin pair's amplitude.
      hints:
        DockerRequirement:
          dockerPull: descpipe/des-sv-mock_catalogs:0.1
      requirements:
        EnvVarRequirement:
          envDef:
            PYTHONDONTWRITEBYTECODE: "1"
        ResourceRequirement:
          coresMin: 1
      baseCommand:
        - python3
      arguments:
        - position: 2
          prefix: "--shear-catalog"
          valueFrom: shear-catalog.fits
        - position: 2
          prefix: "--photoz-catalog"
          valueFrom: photoz-catalog.fits
        - position: 2
          prefix: "--mock-truth"
          valueFrom: mock-truth.yaml
        - position: 3
          prefix: "--cores"
          valueFrom: $(runtime.cores)
      inputs:
        code:
          type: Directory
          doc: "The stage's directory: run.py and any modules beside it."
          loadListing: deep_listing
          inputBinding:
            position: 0
            valueFrom: $(self.path)/run.py
        binning:
          type: File
          format: edam:format_3750
          inputBinding:
            position: 1
            prefix: "--binning"
        n_galaxies:
          type: int
          default: 100000
          inputBinding:
            position: 1
            prefix: "--n_galaxies"
            separate: false
            valueFrom: "=$(self)"
        seed:
          type: int
          default: 1
          inputBinding:
            position: 1
            prefix: "--seed"
            separate: false
            valueFrom: "=$(self)"
        area_deg2:
          type: float
          default: 140.0
          inputBinding:
            position: 1
            prefix: "--area_deg2"
            separate: false
            valueFrom: "=$(self)"
        nz:
          type: int
          default: 100
          inputBinding:
            position: 1
            prefix: "--nz"
            separate: false
            valueFrom: "=$(self)"
        zmax:
          type: float
          default: 2.0
          inputBinding:
            position: 1
            prefix: "--zmax"
            separate: false
            valueFrom: "=$(self)"
        sigma_z:
          type: float
          default: 0.05
          inputBinding:
            position: 1
            prefix: "--sigma_z"
            separate: false
            valueFrom: "=$(self)"
        sigma_e:
          type: float
          default: 0.25
          inputBinding:
            position: 1
            prefix: "--sigma_e"
            separate: false
            valueFrom: "=$(self)"
        shear_amplitude:
          type: float
          default: 0.1
          inputBinding:
            position: 1
            prefix: "--shear_amplitude"
            separate: false
            valueFrom: "=$(self)"
        shear_scale_arcmin:
          type: float
          default: 3.0
          inputBinding:
            position: 1
            prefix: "--shear_scale_arcmin"
            separate: false
            valueFrom: "=$(self)"
      outputs:
        shear-catalog:
          type: File
          format: edam:format_2333
          outputBinding:
            glob: shear-catalog.fits
        photoz-catalog:
          type: File
          format: edam:format_2333
          outputBinding:
            glob: photoz-catalog.fits
        mock-truth:
          type: File
          format: edam:format_3750
          outputBinding:
            glob: mock-truth.yaml
        stdout:
          type: stdout
        stderr:
          type: stderr
      stdout: mock_catalogs.out
      stderr: mock_catalogs.err
  tomography:
    in:
      code: tomography.code
      photoz-catalog: mock_catalogs/photoz-catalog
      config: tomography.config
    out:
      - tomographic-catalog
      - stdout
      - stderr
    run:
      class: CommandLineTool
      id: tomography
      label: tomography
      doc: |
        Assign every galaxy of the photo-z catalog to a tomographic redshift bin.

        Reads `bin_column` (for example Z_MEAN) and the optional `weight_col` from HDU `hdu` (default 1)
        of `photoz-catalog`; objects with zmin < z < zmax and positive weight are split into `nbin` bins
        of equal total weight (equal numbers when unweighted): the interior edges are the weighted
        quantiles i/nbin of z. The YAML `config` gives bin_column, zmin, zmax, nbin and optionally
        weight_col and hdu. Output `tomographic-catalog`: a FITS table with one int32 column BIN per
        input row (1-based bin, -1 when unbinned), header NBIN and the bin edges ZEDGE0..ZEDGE<nbin>.
      hints:
        DockerRequirement:
          dockerPull: descpipe/des-sv-tomography:0.1
      requirements:
        EnvVarRequirement:
          envDef:
            PYTHONDONTWRITEBYTECODE: "1"
        ResourceRequirement:
          coresMin: 1
      baseCommand:
        - python3
      arguments:
        - position: 2
          prefix: "--tomographic-catalog"
          valueFrom: tomographic-catalog.fits
        - position: 3
          prefix: "--cores"
          valueFrom: $(runtime.cores)
      inputs:
        code:
          type: Directory
          doc: "The stage's directory: run.py and any modules beside it."
          loadListing: deep_listing
          inputBinding:
            position: 0
            valueFrom: $(self.path)/run.py
        photoz-catalog:
          type: File
          format: edam:format_2333
          inputBinding:
            position: 1
            prefix: "--photoz-catalog"
        config:
          type: File
          format: edam:format_3750
          inputBinding:
            position: 1
            prefix: "--config"
      outputs:
        tomographic-catalog:
          type: File
          format: edam:format_2333
          outputBinding:
            glob: tomographic-catalog.fits
        stdout:
          type: stdout
        stderr:
          type: stderr
      stdout: tomography.out
      stderr: tomography.err
  pz_stack:
    in:
      code: pz_stack.code
      photoz-catalog: mock_catalogs/photoz-catalog
      tomographic-catalog: tomography/tomographic-catalog
      chunk_rows: pz_stack.chunk_rows
    out:
      - n_of_z
      - stdout
      - stderr
    run:
      class: CommandLineTool
      id: pz_stack
      label: pz_stack
      doc: |
        Estimate the redshift distribution n(z) of each tomographic bin by stacking photo-z PDFs.

        Reads the PDF grid (header NZ, ZMIN, ZMAX) and columns PDF_0..PDF_<NZ-1> from HDU 1 of
        `photoz-catalog`, and BIN (header NBIN) from `tomographic-catalog`; the two must have the same
        rows in the same order. Both are streamed in lock-step, `chunk_rows` rows at a time, so memory
        does not grow with the catalog. n(z) of bin b is the mean PDF of its objects. Output `n_of_z`:
        a FITS table with NZ rows, columns z_low, z_mid, z_high (grid edges linspace(ZMIN, ZMAX, NZ+1))
        and BIN_1..BIN_<NBIN>, header ZMIN, ZMAX, NBIN, NZ, DZ.
      hints:
        DockerRequirement:
          dockerPull: descpipe/des-sv-pz_stack:0.1
      requirements:
        EnvVarRequirement:
          envDef:
            PYTHONDONTWRITEBYTECODE: "1"
        ResourceRequirement:
          coresMin: 1
      baseCommand:
        - python3
      arguments:
        - position: 2
          prefix: "--n_of_z"
          valueFrom: n_of_z.fits
        - position: 3
          prefix: "--cores"
          valueFrom: $(runtime.cores)
      inputs:
        code:
          type: Directory
          doc: "The stage's directory: run.py and any modules beside it."
          loadListing: deep_listing
          inputBinding:
            position: 0
            valueFrom: $(self.path)/run.py
        photoz-catalog:
          type: File
          format: edam:format_2333
          inputBinding:
            position: 1
            prefix: "--photoz-catalog"
        tomographic-catalog:
          type: File
          format: edam:format_2333
          inputBinding:
            position: 1
            prefix: "--tomographic-catalog"
        chunk_rows:
          type: int
          default: 100000
          inputBinding:
            position: 1
            prefix: "--chunk_rows"
            separate: false
            valueFrom: "=$(self)"
      outputs:
        n_of_z:
          type: File
          format: edam:format_2333
          outputBinding:
            glob: n_of_z.fits
        stdout:
          type: stdout
        stderr:
          type: stderr
      stdout: pz_stack.out
      stderr: pz_stack.err
  treecorr:
    in:
      code: treecorr.code
      shear-catalog: mock_catalogs/shear-catalog
      tomographic-catalog: tomography/tomographic-catalog
      config: treecorr.config
    out:
      - correlation-functions
      - stdout
      - stderr
    run:
      class: CommandLineTool
      id: treecorr
      label: treecorr
      doc: |
        Measure the shear two-point correlation functions xi+ and xi- of every pair of tomographic bins.

        Reads RA, DEC (degrees), E_1, E_2 and W from HDU 1 of `shear-catalog` and BIN (header NBIN) from
        the row-aligned `tomographic-catalog`. For each bin pair b1 <= b2 (1-based) TreeCorr's
        GGCorrelation correlates the shears (g1 = E_1, g2 = E_2, weight W) of the two bins, an
        auto-correlation when b1 == b2, with the angular binning of the corr2-style YAML `config`
        (min_sep, max_sep, bin_size or nbins, sep_units, bin_slop), on all the cores it is given.
        Output `correlation-functions`: twopoint-style FITS with extensions xip and xim, one row per
        (bin pair, angular bin): BIN1, BIN2, ANGBIN, VALUE, ANG (mean separation in sep_units),
        ERR (shape noise only) and NPAIRS. The work splits over bin pairs (`split: true` in the
        pipeline file runs one job per pair, then gathers them into the same file).
      hints:
        DockerRequirement:
          dockerPull: descpipe/des-sv-treecorr:0.1
      requirements:
        EnvVarRequirement:
          envDef:
            PYTHONDONTWRITEBYTECODE: "1"
        ResourceRequirement:
          coresMin: 2
        ToolTimeLimit:
          timelimit: 1800
      baseCommand:
        - python3
      arguments:
        - position: 2
          prefix: "--correlation-functions"
          valueFrom: correlation-functions.fits
        - position: 3
          prefix: "--cores"
          valueFrom: $(runtime.cores)
      inputs:
        code:
          type: Directory
          doc: "The stage's directory: run.py and any modules beside it."
          loadListing: deep_listing
          inputBinding:
            position: 0
            valueFrom: $(self.path)/run.py
        shear-catalog:
          type: File
          format: edam:format_2333
          inputBinding:
            position: 1
            prefix: "--shear-catalog"
        tomographic-catalog:
          type: File
          format: edam:format_2333
          inputBinding:
            position: 1
            prefix: "--tomographic-catalog"
        config:
          type: File
          format: edam:format_3750
          inputBinding:
            position: 1
            prefix: "--config"
      outputs:
        correlation-functions:
          type: File
          format: edam:format_2333
          outputBinding:
            glob: correlation-functions.fits
        stdout:
          type: stdout
        stderr:
          type: stderr
      stdout: treecorr.out
      stderr: treecorr.err
  sacc_file:
    in:
      code: sacc_file.code
      n_of_z: pz_stack/n_of_z
      correlation-functions: treecorr/correlation-functions
    out:
      - sacc-data
      - stdout
      - stderr
    run:
      class: CommandLineTool
      id: sacc_file
      label: sacc_file
      doc: |
        Combine the tomographic n(z) and the shear correlation functions into a SACC file.

        Reads `n_of_z` (columns z_mid and BIN_1..BIN_<NBIN>, header DZ) and `correlation-functions`
        (twopoint extensions xip and xim: BIN1, BIN2, ANG, VALUE, ERR). Writes `sacc-data`, a
        SACC FITS file with one NZ tracer `source_<b>` per tomographic bin (n(z) as a density in z:
        the stacked PDF divided by DZ, so it integrates to 1), one `galaxy_shear_xi_plus` or
        `galaxy_shear_xi_minus` data point per (bin pair, angular bin) with tag `theta` (the mean
        separation, in the units recorded in the metadata as theta_units), and a diagonal
        covariance from the squared errors. Those errors are shape noise only, as the treecorr stage
        measures them: likelihood codes should replace the covariance with one that includes
        cosmic variance.
      hints:
        DockerRequirement:
          dockerPull: descpipe/des-sv-sacc_file:0.1
      requirements:
        EnvVarRequirement:
          envDef:
            PYTHONDONTWRITEBYTECODE: "1"
        ResourceRequirement:
          coresMin: 1
      baseCommand:
        - python3
      arguments:
        - position: 2
          prefix: "--sacc-data"
          valueFrom: sacc-data.fits
        - position: 3
          prefix: "--cores"
          valueFrom: $(runtime.cores)
      inputs:
        code:
          type: Directory
          doc: "The stage's directory: run.py and any modules beside it."
          loadListing: deep_listing
          inputBinding:
            position: 0
            valueFrom: $(self.path)/run.py
        n_of_z:
          type: File
          format: edam:format_2333
          inputBinding:
            position: 1
            prefix: "--n_of_z"
        correlation-functions:
          type: File
          format: edam:format_2333
          inputBinding:
            position: 1
            prefix: "--correlation-functions"
      outputs:
        sacc-data:
          type: File
          format: edam:format_2333
          outputBinding:
            glob: sacc-data.fits
        stdout:
          type: stdout
        stderr:
          type: stderr
      stdout: sacc_file.out
      stderr: sacc_file.err
