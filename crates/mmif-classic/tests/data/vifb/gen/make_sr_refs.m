% Runs VIFB's run_LP_SR.m and run_RP_SR.m (https://github.com/xingchenzhang/VIFB, not part of mmif)
% under GNU Octave on the test pairs in ../inputs with mmif's default dictionary
% (src/data/sr_dict_8x256.f64, learnt by learn_dictionary.m) in place of VIFB's unlicensed
% sparsefusion/Dictionary/D_100000_256_8.mat, and writes the 8-bit results to
% ../lp_sr/<pair>.png and ../rp_sr/<pair>.png. It also runs VIFB's sparsefusion/sparse_fusion.m
% alone (overlap 6, epsilon 0.1) on the full-resolution gray crops SR_PAIRS and writes its double
% result to ../sr/<pair>.f64 (little-endian float64, row-major), the reference of mmif's OMP.
% VIFB's method folder is copied to a temporary folder whose dictionary is replaced and into
% whose OMP-Box the MEX files compiled for Octave are put (OMP-Box ships C sources; build them with
% `mkoctfile --mex -o omp2mex omp2mex.c ompcore.c omputils.c myblas.c ompprof.c` and likewise
% ompmex, in a folder given as $OMP_MEX). VIFB's checkout is left as it is.
% Usage (from the repository root, VIFB checked out at $VIFB_DIR; octave-image loaded):
%   OMP_MEX=data/omp octave-cli crates/mmif-classic/tests/data/vifb/gen/make_sr_refs.m
% DICT=file.f64 uses another dictionary and OUT_SUFFIX=_x writes to ../lp_sr_x etc.;
% VIFB_DICT=1 keeps VIFB's own dictionary (for comparisons outside the repository).
pkg load image
root = pwd;
data = fullfile(root, 'crates/mmif-classic/tests/data/vifb');
dict = getenv('DICT'); if isempty(dict), dict = fullfile(root, 'crates/mmif-classic/src/data/sr_dict_8x256.f64'); end
suffix = getenv('OUT_SUFFIX');
tmp = tempname();
mkdir(tmp);
copyfile(fullfile(getenv('VIFB_DIR'), 'methods', 'LP_SR'), fullfile(tmp, 'LP_SR'));
copyfile(fullfile(getenv('VIFB_DIR'), 'methods', 'RP_SR', 'run_RP_SR.m'), fullfile(tmp, 'LP_SR'));
ompdir = fullfile(tmp, 'LP_SR', 'sparsefusion', 'ksvdbox', 'ompbox', 'private');
copyfile(fullfile(root, getenv('OMP_MEX'), '*.mex'), ompdir);
if isempty(getenv('VIFB_DICT'))
  f = fopen(dict, 'r', 'ieee-le');
  D = fread(f, [64, 256], 'double');  % atom after atom = MATLAB's column-major 64x256
  fclose(f);
  save('-mat7-binary', fullfile(tmp, 'LP_SR', 'sparsefusion', 'Dictionary', 'D_100000_256_8.mat'), 'D');
end
files = dir(fullfile(data, 'inputs', '*_ir.png'));
only = getenv('PAIRS');
cd(fullfile(tmp, 'LP_SR'));
addpath(pwd);
for name = {'LP_SR', 'RP_SR'}
  out = fullfile(data, [lower(name{1}) suffix]);
  if ~exist(out, 'dir'), mkdir(out); end
  for k = 1:numel(files)
    pair = files(k).name(1:end-7);
    if ~isempty(only) && isempty(strfind(only, pair)), continue; end
    sIR.img = fullfile(data, 'inputs', [pair '_ir.png']);
    sVI.img = fullfile(data, 'inputs', [pair '_vi.png']);
    t = tic;
    img = feval(['run_' name{1}], sVI, sIR, 0);
    imwrite(img, fullfile(out, [pair '.png']));
    printf('%s %s done in %.2f s\n', name{1}, pair, toc(t));
  end
end
sr_pairs = getenv('SR_PAIRS');
if ~isempty(sr_pairs)
  addpath(genpath('sparsefusion'));
  load('sparsefusion/Dictionary/D_100000_256_8.mat');
  out = fullfile(data, ['sr' suffix]);
  if ~exist(out, 'dir'), mkdir(out); end
  for pair = strsplit(sr_pairs, ' ')
    A = double(imread(fullfile(data, 'inputs', [pair{1} '_ir.png'])));
    B = double(imread(fullfile(data, 'inputs', [pair{1} '_vi.png'])));
    F = sparse_fusion(A, B(:, :, 1), D, 6, 0.1);
    f = fopen(fullfile(out, [pair{1} '.f64']), 'w', 'ieee-le');
    fwrite(f, F.', 'double');  % row-major
    fclose(f);
    printf('sparse_fusion %s done\n', pair{1});
  end
end
cd(root);
confirm_recursive_rmdir(false);
rmdir(tmp, 's');
