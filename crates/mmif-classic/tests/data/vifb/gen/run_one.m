% Runs one VIFB method (https://github.com/xingchenzhang/VIFB, not part of mmif) on one pair under
% GNU Octave, writes its 8-bit result and prints the best wall time of RUNS runs of run_<METHOD>
% (including its imread), for the full-size parity and speed figures of docs/vifb_parity_a.md.
% Usage (from the repository root, VIFB checked out at $VIFB_DIR; octave-image loaded):
%   METHOD=GTF IR=ir.png VIS=vis.png OUT=fused.png RUNS=3 octave-cli crates/mmif-classic/tests/data/vifb/gen/run_one.m
% VIFB's run_GFF cannot run as shipped (it round-trips the sources through JPEGs under placeholder
% paths), so GFF is called on the stack run_GFF builds, GFF(uint8(cat(3, VIS, IR))), gray pairs only.
% SHIMS=1 puts the MATLAB-compatibility shims of tools/octave_shims on the path (GFCE, HMSD_GF).
pkg load image
root = pwd;
if ~isempty(getenv('SHIMS'))
  addpath(fullfile(root, 'tools/octave_shims'));
end
name = getenv('METHOD');
runs = str2double(getenv('RUNS'));
if isnan(runs), runs = 1; end
sIR.img = make_absolute_filename(getenv('IR'));
sVI.img = make_absolute_filename(getenv('VIS'));
out = make_absolute_filename(getenv('OUT'));
cd(fullfile(getenv('VIFB_DIR'), 'methods', name));
addpath(genpath('./'));
best = Inf;
for r = 1:runs
  t = tic;
  if strcmp(name, 'GFF')
    img = GFF(uint8(cat(3, imread(sVI.img), imread(sIR.img))));
  else
    img = feval(['run_' name], sVI, sIR, 0);
  end
  best = min(best, toc(t));
  printf('%s run %d: %.3f s\n', name, r, toc(t));
end
cd(root);
imwrite(img, out);
printf('%s: best of %d: %.3f s\n', name, runs, best);
