% Runs VIFB's run_LatLRR.m (https://github.com/xingchenzhang/VIFB, not part of mmif) under GNU Octave on
% the test pairs in ../inputs with mmif's default projection (src/data/latlrr_l8.f64, learnt by
% learn_projection.m) in place of VIFB's models/L_8.mat, and writes the 8-bit results to
% ../latlrr/<pair>.png. VIFB's method folder is copied to a temporary folder, whose models/L_8.mat
% is replaced; VIFB's checkout is left as it is.
% Usage (from the repository root, VIFB checked out at $VIFB_DIR; octave-image loaded):
%   octave-cli crates/mmif-classic/tests/data/vifb/gen/make_latlrr_refs.m
pkg load image
root = pwd;
data = fullfile(root, 'crates/mmif-classic/tests/data/vifb');
f = fopen(fullfile(root, 'crates/mmif-classic/src/data/latlrr_l8.f64'), 'r', 'ieee-le');
L_8 = fread(f, [64, 64], 'double').';  % stored row-major
fclose(f);
tmp = tempname();
mkdir(tmp);
copyfile(fullfile(getenv('VIFB_DIR'), 'methods', 'LatLRR'), fullfile(tmp, 'LatLRR'));
save('-mat7-binary', fullfile(tmp, 'LatLRR', 'models', 'L_8.mat'), 'L_8');
out = fullfile(data, 'latlrr');
files = dir(fullfile(data, 'inputs', '*_ir.png'));
only = getenv('PAIRS');
cd(fullfile(tmp, 'LatLRR'));
addpath(pwd);
for k = 1:numel(files)
  pair = files(k).name(1:end-7);
  if ~isempty(only) && isempty(strfind(only, pair)), continue; end
  sIR.img = fullfile(data, 'inputs', [pair '_ir.png']);
  sVI.img = fullfile(data, 'inputs', [pair '_vi.png']);
  t = tic;
  img = run_LatLRR(sVI, sIR, 0);
  imwrite(img, fullfile(out, [pair '.png']));
  printf('LatLRR %s done in %.1f s\n', pair, toc(t));
end
cd(root);
confirm_recursive_rmdir(false);
rmdir(tmp, 's');
