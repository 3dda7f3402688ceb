% Reference for mmif's LatLRR learner (tests/vifb_octave_a.rs): VIFB's methods/LatLRR/latent_lrr.m
% (https://github.com/xingchenzhang/VIFB, not part of mmif) on a small problem, lambda = 0.4: the 4x4
% distinct patches of inputs/tno_48x64_ir.png on the 0..1 scale (im2col 'distinct' order), every
% fourth of them (48 columns); writes the 16x16 projection L as text to ../latlrr/learn_u4_L.txt.
% Usage (from the repository root, VIFB at $VIFB_DIR):
%   octave-cli crates/mmif-classic/tests/data/vifb/gen/learn_small.m
pkg load image
addpath(fullfile(getenv('VIFB_DIR'), 'methods', 'LatLRR'));
data = 'crates/mmif-classic/tests/data/vifb';
img = im2double(imread(fullfile(data, 'inputs', 'tno_48x64_ir.png')));
B = im2col(img, [4, 4], 'distinct');
X = B(:, 1:4:end);
[Z, L, E] = latent_lrr(X, 0.4);
f = fopen(fullfile(data, 'latlrr', 'learn_u4_L.txt'), 'w');
fprintf(f, [repmat('%.17g ', 1, 15) '%.17g\n'], L.');
fclose(f);
